"""Ensembles, the teacher-count sweep table and the report, on a project with stored fake runs.

Runs and outputs are inserted directly (no training), so every expected number is computed here
independently with numpy from the same logits.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from trainer import runs
from trainer.project import Project

N_TEST, N_TRAIN, C = 60, 12, 4


def independent_score(labels: np.ndarray, predictions: np.ndarray) -> dict:
    """ICBHI Sp/Se/Score in percent, written out without trainer.evaluate."""
    normal = labels == 0
    abnormal = ~normal
    sp = 100.0 * np.sum(predictions[normal] == 0) / np.sum(normal)
    se = 100.0 * np.sum(predictions[abnormal] == labels[abnormal]) / np.sum(abnormal)
    return {"sp": sp, "se": se, "score": (sp + se) / 2}


def sample_std(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(np.sqrt(((values - values.mean()) ** 2).sum() / (len(values) - 1)))


class FakeStudy:
    """A project with one train and one test recording, and groups of runs with stored logits."""

    def __init__(self, path):
        self.project = Project.create(path)
        self.rng = np.random.default_rng(42)
        self.test_labels = self.rng.integers(0, C, N_TEST)
        self.test_labels[:20] = 0  # enough normal cycles for a meaningful Sp
        with self.project.transaction():
            db = self.project.db
            for rid, name, split in ((1, "rec_train", "train"), (2, "rec_test", "test")):
                db["recordings"].insert({"id": rid, "name": name, "split": split, "audio_status": "ok"})
            self.train_ids = [
                db["cycles"].insert({"recording_id": 1, "start": i, "end": i + 0.9, "label": 0}).last_pk for i in range(N_TRAIN)
            ]
            self.test_ids = [
                db["cycles"].insert({"recording_id": 2, "start": i, "end": i + 0.9, "label": int(lab)}).last_pk
                for i, lab in enumerate(self.test_labels)
            ]
        self.logits: dict[str, np.ndarray] = {}  # run id -> test logits (N_TEST, C)

    def add_run(self, run_id, group, seed, arch="cnn6", kind="teacher", status="done", targets=None, selection="last",
                quality=1.5):
        # Logits that lean towards the true label by `quality`, plus noise: a plausible, imperfect model.
        logits = self.rng.normal(size=(N_TEST, C)) + quality * np.eye(C)[self.test_labels]
        train_logits = self.rng.normal(size=(N_TRAIN, C))
        metrics = independent_score(self.test_labels, logits.argmax(1)) | {"selection": selection}
        spec = {"arch": arch, "seed": seed, "group": group, "select": selection, "targets": targets or {"kind": "hard"}}
        runs.insert_run(self.project, run_id, group=group, kind=kind, arch=arch, seed=seed, spec=spec)
        if status == "done":
            runs.store_logits(self.project, run_id, self.test_ids + self.train_ids, np.concatenate([logits, train_logits]))
            runs.finish(self.project, run_id, metrics=metrics, checkpoint=None, epoch=1)
        else:
            runs.mark_failed(self.project, run_id, "diverged")
        self.logits[run_id] = logits.astype(np.float32)
        return metrics


@pytest.fixture
def study(tmp_path):
    s = FakeStudy(tmp_path / "study.rsc")
    # Inserted out of seed order on purpose: "first k" must mean first by seed.
    s.metrics = {}
    for seed in (4, 2, 5, 1, 3):
        s.metrics[f"t{seed}"] = s.add_run(f"t{seed}", "teachers", seed, quality=1.2 + 0.1 * seed)
    s.add_run("t6", "teachers", 6, status="failed")
    soft = {"kind": "soft", "mode": "mean", "k": 3, "teacher_group": "teachers", "teachers": ["t1", "t2", "t3"]}
    for seed in (1, 2, 3):
        s.metrics[f"s{seed}"] = s.add_run(f"s{seed}", "students", seed, kind="student", targets=soft, quality=2.0,
                                          selection="test" if seed == 2 else "last")
    yield s
    s.project.close()


def test_ensemble_score_equals_independent_argmax_of_mean_logits(study):
    from trainer.results import ensemble_score

    order = ["t1", "t2", "t3", "t4", "t5"]
    for k in (1, 3, 5):
        result = ensemble_score(study.project, "teachers", k=k)
        assert result["run_ids"] == order[:k]
        mean = np.mean([study.logits[r] for r in order[:k]], axis=0)
        expected = independent_score(study.test_labels, mean.argmax(1))
        for key in ("sp", "se", "score"):
            assert result["metrics"][key] == pytest.approx(expected[key], abs=1e-9)
        assert result["n_cycles"] == N_TEST
    # k = None: every finished run (the failed one never counts).
    assert ensemble_score(study.project, "teachers")["run_ids"] == order
    # Chosen runs, and the second generation from a group of students.
    chosen = ensemble_score(study.project, ["t5", "t2"])
    mean = (study.logits["t5"] + study.logits["t2"]) / 2
    assert chosen["metrics"]["score"] == pytest.approx(independent_score(study.test_labels, mean.argmax(1))["score"])
    second = ensemble_score(study.project, "students")
    mean = np.mean([study.logits[r] for r in ("s1", "s2", "s3")], axis=0)
    assert second["metrics"]["score"] == pytest.approx(independent_score(study.test_labels, mean.argmax(1))["score"])


def test_ensemble_reads_current_labels_and_skips_cycles_added_later(study):
    from trainer.results import ensemble_curve, ensemble_score

    before = ensemble_score(study.project, "teachers", k=3)
    # A cycle added after the runs has no logits: left out, and said so.
    with study.project.transaction():
        study.project.db["cycles"].insert({"recording_id": 2, "start": 500, "end": 501, "label": 2})
    after = ensemble_score(study.project, "teachers", k=3)
    assert after["excluded_cycles"] == 1 and after["metrics"]["score"] == pytest.approx(before["metrics"]["score"])
    # A relabelled cycle counts with its new label.
    cid = study.test_ids[0]
    study.project.update_cycle(cid, label=3)
    labels = study.test_labels.copy()
    labels[0] = 3
    mean = np.mean([study.logits[r] for r in ("t1", "t2", "t3")], axis=0)
    relabelled = ensemble_score(study.project, "teachers", k=3)
    assert relabelled["metrics"]["score"] == pytest.approx(independent_score(labels, mean.argmax(1))["score"])
    # The curve gives the same numbers point by point.
    curve = {p["k"]: p["metrics"]["score"] for p in ensemble_curve(study.project, "teachers", [1, 3, 5])}
    assert curve[3] == pytest.approx(relabelled["metrics"]["score"])


def test_ensemble_errors_name_the_problem(study):
    from trainer.results import EnsembleError, ensemble_score

    with pytest.raises(EnsembleError, match="no runs in group 'nope'"):
        ensemble_score(study.project, "nope")
    with pytest.raises(EnsembleError, match="5 finished runs, fewer than k=6"):
        ensemble_score(study.project, "teachers", k=6)
    with pytest.raises(EnsembleError, match="no run 'ghost'"):
        ensemble_score(study.project, ["t1", "ghost"])


def test_report_groups_mean_std_and_formats(study):
    from trainer.results import build_report, render

    report = build_report(study.project)
    groups = {g["group"]: g for g in report["groups"]}
    teachers, students = groups["teachers"], groups["students"]
    assert teachers["n"] == 5 and teachers["run_ids"] == ["t1", "t2", "t3", "t4", "t5"]
    assert teachers["not_finished"] == {"t6": "failed"}
    for key in ("sp", "se", "score"):
        values = [study.metrics[f"t{s}"][key] for s in range(1, 6)]
        assert teachers[key]["mean"] == pytest.approx(sum(values) / 5)
        assert teachers[key]["std"] == pytest.approx(sample_std(values))
    assert students["mode"] == "mean" and students["k"] == 3 and students["teacher_group"] == "teachers"
    assert students["test_selection"] and not teachers["test_selection"]

    # Hard against soft: the gain is the difference of the mean scores.
    (hvs,) = report["hard_vs_soft"]
    s_mean = np.mean([study.metrics[f"s{s}"]["score"] for s in (1, 2, 3)])
    t_mean = np.mean([study.metrics[f"t{s}"]["score"] for s in range(1, 6)])
    assert hvs["hard_group"] == "teachers" and hvs["soft_group"] == "students"
    assert hvs["gain"] == pytest.approx(s_mean - t_mean)

    # Ensembles at common ks and k = all, traceable to their runs.
    ens = {(e["group"], e["k"]): e for e in report["ensembles"]}
    assert set(ens) == {("teachers", 1), ("teachers", 3), ("teachers", 5), ("students", 1), ("students", 3)}
    mean = np.mean([study.logits[r] for r in ("t1", "t2", "t3", "t4", "t5")], axis=0)
    assert ens[("teachers", 5)]["score"] == pytest.approx(independent_score(study.test_labels, mean.argmax(1))["score"])
    assert ens[("teachers", 5)]["all"] and ens[("students", 3)]["generation"] == 2

    md = render(report, "md")
    score_text = f"{teachers['score']['mean']:.2f} ± {sample_std([study.metrics[f't{s}']['score'] for s in range(1, 6)]):.2f}"
    assert score_text in md
    assert "t1 t2 t3 t4 t5" in md  # run ids listed
    assert "test*" in md and "| CNN6 | published" in md and "57.17 ± 0.81" in md

    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    row = next(r for r in rows if r["table"] == "groups" and r["group"] == "students")
    values = [study.metrics[f"s{s}"]["se"] for s in (1, 2, 3)]
    assert float(row["se_mean"]) == pytest.approx(np.mean(values))
    assert float(row["se_std"]) == pytest.approx(sample_std(values))
    assert row["run_ids"] == "s1 s2 s3"
    soft_row = next(r for r in rows if r["table"] == "hard_vs_soft" and r["kind"] == "soft")
    assert float(soft_row["gain"]) == pytest.approx(s_mean - t_mean)
    assert any(r["source"] == "published" and r["group"] == "CNN6" for r in rows)

    data = json.loads(render(report, "json"))
    jgroups = {g["group"]: g for g in data["groups"]}
    assert jgroups["students"]["run_ids"] == ["s1", "s2", "s3"]
    assert jgroups["students"]["score"]["mean"] == pytest.approx(s_mean)

    latex = render(report, "latex")
    assert r"\begin{tabular}" in latex and f"{s_mean:.2f}$_{{\\pm" in latex


def test_cli_ensemble_and_report(study, tmp_path, capsys):
    from trainer.cli import main

    path = str(study.project.path)
    assert main(["ensemble", path, "--group", "teachers", "--k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    mean = np.mean([study.logits[r] for r in ("t1", "t2", "t3")], axis=0)
    assert out["metrics"]["score"] == pytest.approx(independent_score(study.test_labels, mean.argmax(1))["score"])
    assert out["run_ids"] == ["t1", "t2", "t3"]

    target = tmp_path / "report.csv"
    assert main(["report", path, "--format", "csv", "--output", str(target)]) == 0
    assert target.read_text().startswith("table,source,group")
    assert main(["ensemble", path, "--group", "nope"]) == 2
    assert "no runs in group 'nope'" in capsys.readouterr().err


def test_sweep_plan_reuses_runs_and_table_matches_independent(study):
    from trainer.results import plan_sweep, submit_sweep, sweep_table

    plan = plan_sweep(study.project, "teachers", "cnn6-tiny", [0, 1, 3], [1, 2], epochs=1)
    assert [(r.k, r.seed) for r in plan.runs] == [(0, 1), (0, 2), (1, 1), (1, 2), (3, 1), (3, 2)]
    k3 = plan.runs[4].spec.targets
    assert k3["kind"] == "soft" and k3["teachers"] == ["t1", "t2", "t3"] and k3["k"] == 3 and k3["mode"] == "mean"
    assert plan.runs[0].spec.targets == {"kind": "hard"}
    ids = submit_sweep(study.project, plan)
    assert len(set(ids)) == 6
    again = plan_sweep(study.project, "teachers", "cnn6-tiny", [0, 1, 3], [1, 2], epochs=1)
    assert [r.run_id for r in again.runs] == ids  # nothing planned twice
    from trainer.results import SweepError

    with pytest.raises(SweepError, match="other settings \\(epochs\\)"):
        plan_sweep(study.project, "teachers", "cnn6-tiny", [0, 1, 3], [1, 2], epochs=2)
    # An interrupted run is put back in the queue (to continue from its checkpoint), not planned anew.
    assert runs.cancel(study.project, ids[1]) == "cancelled"
    again = plan_sweep(study.project, "teachers", "cnn6-tiny", [0, 1, 3], [1, 2], epochs=1)
    assert submit_sweep(study.project, again) == ids
    assert runs.get_run(study.project, ids[1]).status == "queued"

    # Finish the k=3 students by hand with known metrics; the table must agree.
    scores = {ids[4]: {"sp": 80.0, "se": 40.0, "score": 60.0}, ids[5]: {"sp": 70.0, "se": 50.0, "score": 60.5}}
    for run_id, metrics in scores.items():
        runs.finish(study.project, run_id, metrics=metrics, checkpoint=None, epoch=1)
    rows = {r["k"]: r for r in sweep_table(study.project, plan)}
    assert rows[3]["n"] == 2 and rows[3]["score"][0] == pytest.approx(60.25)
    assert rows[3]["score"][1] == pytest.approx(sample_std([60.0, 60.5]))
    assert rows[0]["n"] == 0 and rows[0]["pending"] == 2 and rows[0]["ensemble"] is None
    mean = np.mean([study.logits[r] for r in ("t1", "t2", "t3")], axis=0)
    assert rows[3]["ensemble"]["score"] == pytest.approx(independent_score(study.test_labels, mean.argmax(1))["score"])
    assert rows[3]["ensemble"]["run_ids"] == ["t1", "t2", "t3"]


def test_hard_baseline_prefers_same_training_settings(study):
    from trainer.results import build_report

    # A hard group with the students' exact settings (select=last, ...) but fewer seeds than "teachers".
    for seed in (1, 2):
        study.add_run(f"h{seed}", "hard-same", seed, selection="last")
    # Make the students' settings uniform (select=last) and the teachers' different (select=val); a stored
    # spec never changes in real use, so the test rewrites the rows itself.
    select = {"s1": "last", "s2": "last", "s3": "last"} | {f"t{seed}": "val" for seed in range(1, 6)}
    with study.project.transaction():
        for run_id, value in select.items():
            spec = runs.get_run(study.project, run_id).spec | {"select": value}
            study.project.db["runs"].update(run_id, {"spec": json.dumps(spec)})
    (row,) = build_report(study.project)["hard_vs_soft"]
    assert row["hard_group"] == "hard-same" and row["same_settings"]
    assert row["hard_run_ids"] == ["h1", "h2"]


@pytest.mark.slow
def test_sweep_end_to_end_on_a_demo_project(tmp_path, capsys):
    """Teachers, then `rsc sweep` in the foreground, then `rsc report`: real (tiny) training throughout."""
    from trainer.cli import main
    from trainer.data.demo import create_demo_project

    path = tmp_path / "demo.rsc"
    create_demo_project(path, recordings=8, seed=0).close()
    assert main(["train", str(path), "--arch", "cnn6-tiny", "--seeds", "1-2", "--group", "teachers", "--epochs", "1",
                 "--quiet"]) == 0
    # A queued run that is not the sweep's: the sweep trains only its own runs and leaves this one to a worker.
    assert main(["train", str(path), "--arch", "cnn6-tiny", "--group", "bystander", "--epochs", "1", "--queue"]) == 0
    assert main(["sweep", str(path), "--teachers", "teachers", "--arch", "cnn6-tiny", "--ks", "0,2", "--seeds", "1",
                 "--epochs", "1", "--quiet", "--json"]) == 0
    out = capsys.readouterr().out
    table = json.loads(out[out.index("{"):])
    rows = {r["k"]: r for r in table["rows"]}
    assert rows[0]["n"] == 1 and rows[2]["n"] == 1 and rows[2]["ensemble"]["run_ids"]
    with Project.open(path) as project:
        from trainer.results import ensemble_score

        student = runs.get_run(project, rows[2]["run_ids"][0])
        assert student.spec["targets"]["teachers"] == rows[2]["ensemble"]["run_ids"]
        assert ensemble_score(project, "teachers")["metrics"]["score"] == pytest.approx(rows[2]["ensemble"]["score"])
        assert [r.status for r in runs.list_runs(project, group="bystander")] == ["queued"]
    assert main(["report", str(path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {g["group"] for g in report["groups"]} == {
        "teachers", "bystander", "sweep-teachers-cnn6-tiny-mean-k0", "sweep-teachers-cnn6-tiny-mean-k2"
    }
    (hvs,) = report["hard_vs_soft"]
    # Both hard groups share the student's settings; the one with more seeds is the baseline.
    assert hvs["hard_group"] == "teachers" and hvs["same_settings"] and hvs["soft_group"].endswith("-k2")
