"""trainer.results.views: the Compare view's numbers from outputs read once equal what the report computes.

Fake runs are inserted into a copy of the demo project (no training), their logits on every cycle stored.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import copy_project

from trainer import runs
from trainer.evaluate import icbhi_score
from trainer.project import Project
from trainer.results import build_report, collect_ensembles, collect_groups, ensemble_logits
from trainer.results.sweep import SweepPlan, sweep_table
from trainer.results.views import (
    assemble_report, cell_rows, differing_settings, ensemble_curve_of, ensemble_entries, read_run_outputs,
    row_proportions, split_cycle_ids, split_cycles, spread, stack_outputs, student_curves,
)

PREFIX = "sweep-teachers-cnn6-mean"


def add_run(project, ids, labels, test, run_id, group, seed, quality, rng, targets=None, select="val"):
    targets = targets or {"kind": "hard"}
    logits = (rng.normal(size=(len(ids), 4)) + quality * np.eye(4)[labels]).astype(np.float32)
    spec = {"arch": "cnn6", "seed": seed, "group": group, "epochs": 3, "select": select, "targets": targets}
    kind = "student" if targets["kind"] == "soft" else "teacher"
    runs.insert_run(project, run_id, group=group, kind=kind, arch="cnn6", seed=seed, spec=spec)
    final = icbhi_score(labels[test], logits[test].argmax(axis=1))
    metrics = {key: final[key] for key in ("sp", "se", "score")} | {"selection": select}
    runs.store_logits(project, run_id, ids, logits)
    runs.finish(project, run_id, metrics=metrics, checkpoint=None, epoch=3)


@pytest.fixture(scope="module")
def project(demo_template, tmp_path_factory):
    project = Project.open(copy_project(demo_template, tmp_path_factory.mktemp("views") / "study.rsc"))
    cycles = project.cycles()
    ids = [c["id"] for c in cycles]
    labels = np.array([c["label"] for c in cycles])
    test = np.array([c["split"] == "test" for c in cycles])
    rng = np.random.default_rng(4)
    for seed in range(1, 4):
        add_run(project, ids, labels, test, f"t{seed}", "teachers", seed, 1.2, rng)
        add_run(project, ids, labels, test, f"h{seed}", f"{PREFIX}-k0", seed, 0.8, rng)
        for k in (1, 3):
            targets = {"kind": "soft", "mode": "mean", "k": k, "teacher_group": "teachers", "temperature": 1.0,
                       "hard_weight": 0.0, "teachers": [f"t{i}" for i in range(1, k + 1)]}
            add_run(project, ids, labels, test, f"s{k}-{seed}", f"{PREFIX}-k{k}", seed, 0.8 + 0.2 * k, rng, targets)
    yield project
    project.close()


def read_all(project):
    """Each group's outputs stacked from its runs' outputs, each read once."""
    groups = collect_groups(project)
    ids, cycles = split_cycle_ids(project), split_cycles(project)
    read = {run_id: read_run_outputs(project, run_id, ids) for g in groups for run_id in g["run_ids"]}
    return groups, {g["group"]: stack_outputs(g["run_ids"], read, cycles) for g in groups}


def same_outputs(mine, theirs) -> bool:
    return (mine.run_ids == theirs.run_ids and np.array_equal(mine.cycle_ids, theirs.cycle_ids)
            and np.array_equal(mine.labels, theirs.labels) and np.array_equal(mine.logits, theirs.logits)
            and mine.logits.dtype == theirs.logits.dtype and mine.excluded == theirs.excluded)


def test_ensembles_from_outputs_read_once_equal_the_reports(project):
    groups, outputs = read_all(project)
    metrics = {run.id: run.metrics for run in runs.list_runs(project)}
    mine = [row for g in groups for row in ensemble_entries(g, outputs[g["group"]], metrics)]
    assert mine == collect_ensembles(project, groups)
    assert assemble_report(project, groups, mine) == build_report(project)


def test_a_group_without_outputs_gets_the_reports_error_row(project):
    runs.insert_run(project, "empty-1", group="empty", kind="teacher", arch="cnn6", seed=1, spec={"seed": 1})
    runs.finish(project, "empty-1", metrics={"score": 1.0}, checkpoint=None, epoch=1)
    runs.insert_run(project, "empty-2", group="empty", kind="teacher", arch="cnn6", seed=2, spec={"seed": 2})
    runs.finish(project, "empty-2", metrics={"score": 1.0}, checkpoint=None, epoch=1)
    try:
        groups, outputs = read_all(project)
        assert isinstance(outputs["empty"], str) and "has no stored outputs" in outputs["empty"]
        group = next(g for g in groups if g["group"] == "empty")
        expected = [e for e in collect_ensembles(project, groups) if e["group"] == "empty"]
        assert ensemble_entries(group, outputs["empty"], {}) == expected
        assert expected == [{"group": "empty", "error": outputs["empty"]}]
    finally:
        with project.transaction():
            project.db.execute("DELETE FROM runs WHERE group_name = 'empty'")


def test_outputs_read_once_equal_ensemble_logits_after_relabels_deletes_and_undos(project):
    run_ids = ["t1", "t2", "t3"]
    ids = split_cycle_ids(project)
    read = {run_id: read_run_outputs(project, run_id, ids) for run_id in run_ids}
    assert same_outputs(stack_outputs(run_ids, read, split_cycles(project)), ensemble_logits(project, run_ids))
    cycle_id = int(read["t1"].cycle_ids[3])
    old = project.cycle(cycle_id)["label"]
    try:
        project.update_cycle(cycle_id, label=(old + 1) % 4)
        assert same_outputs(stack_outputs(run_ids, read, split_cycles(project)), ensemble_logits(project, run_ids))
        project.delete_cycle(cycle_id)
        without = stack_outputs(run_ids, read, split_cycles(project))
        assert cycle_id not in without.cycle_ids and same_outputs(without, ensemble_logits(project, run_ids))
        project.restore_cycle(cycle_id)  # its outputs were read with the deleted cycles: nothing to read again
        assert same_outputs(stack_outputs(run_ids, read, split_cycles(project)), ensemble_logits(project, run_ids))
    finally:
        project.update_cycle(cycle_id, label=old)


def test_one_run_stacked_alone_is_what_rsc_compare_scores_for_a_run(project):
    read = {"s3-1": read_run_outputs(project, "s3-1", split_cycle_ids(project))}
    assert same_outputs(stack_outputs(["s3-1"], read, split_cycles(project)), ensemble_logits(project, ["s3-1"]))


def test_the_teacher_curve_scores_the_first_k_runs_at_every_k(project):
    outputs = ensemble_logits(project, ["t1", "t2", "t3"])
    curve = ensemble_curve_of(outputs)
    assert curve["k"] == [1, 2, 3]
    for k, score in zip(curve["k"], curve["score"]):
        mean = outputs.logits[:, :k].mean(axis=1)
        assert score == icbhi_score(outputs.labels, mean.argmax(axis=1))["score"]


def test_student_curves_equal_the_sweep_table(project):
    groups = collect_groups(project)
    (curve,) = student_curves(groups)
    assert curve["teacher_group"] == "teachers" and curve["mode"] == "mean" and curve["arch"] == "cnn6"
    plan = SweepPlan("teachers", "cnn6", "mean", PREFIX, [0, 1, 3], [1, 2, 3])
    table = sweep_table(project, plan)
    assert [p["k"] for p in curve["points"]] == [row["k"] for row in table] == [0, 1, 3]
    for point, row in zip(curve["points"], table):
        assert point["group"] == row["group"] and point["n"] == row["n"]
        for key in ("sp", "se", "score"):
            assert point[key] == pytest.approx(row[key], abs=1e-12)


def test_cells_proportions_settings_and_spread():
    labels = np.array([0, 0, 1, 1, 2, 3, 3])
    predictions = np.array([0, 1, 0, 1, 2, 0, 3])
    assert cell_rows(labels, predictions, 1, 0).tolist() == [2]
    assert cell_rows(labels, predictions, 3, 0).tolist() == [5]
    confusion = np.array([[2, 0], [1, 3]])
    assert row_proportions(confusion).tolist() == [[1.0, 0.0], [0.25, 0.75]]
    assert row_proportions(np.zeros((2, 2))).tolist() == [[0.0, 0.0], [0.0, 0.0]]

    keys, flat = differing_settings({"a": {"lr": 1, "seed": 1, "targets": {"kind": "hard"}},
                                     "b": {"lr": 1, "seed": 2, "targets": {"kind": "soft", "k": 5}}})
    assert keys == ["seed", "targets.k", "targets.kind"] and flat["b"]["targets.k"] == 5
    assert differing_settings({"a": {"lr": 1}}, only_differences=True)[0] == ["lr"]  # one run: all its settings

    mean, std, count = spread([[1.0, 2.0, 3.0], [3.0, None], [5.0]])
    assert mean.tolist() == [3.0, 2.0, 3.0] and count.tolist() == [3, 1, 1]
    assert std[0] == pytest.approx(2.0) and std[1:].tolist() == [0.0, 0.0]
