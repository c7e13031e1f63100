"""The Compare view's runs table: 2-class (normal against abnormal) Sp, Se and Score beside the 4-class ones.

Runs are inserted with stored logits and the final metrics the trainer writes (a confusion matrix, no
two-class numbers), one of them without a matrix; every expected number is counted here with numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

from rscapp import workers
from rscapp.compare import CompareView
from rscapp.model import ProjectModel
from trainer import runs
from trainer.evaluate import icbhi_score
from trainer.project import Project

N_TEST = 60
LOADED_MS = 20_000


def counted(labels: np.ndarray, predictions: np.ndarray) -> dict:
    normal, abnormal = labels == 0, labels != 0
    sp = 100.0 * np.sum(predictions[normal] == 0) / np.sum(normal)
    se = 100.0 * np.sum(predictions[abnormal] != 0) / np.sum(abnormal)
    return {"sp": sp, "se": se, "score": (sp + se) / 2}


@pytest.fixture
def study(tmp_path):
    project = Project.create(tmp_path / "two-class.rsc")
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, N_TEST)
    labels[:20] = 0
    with project.transaction():
        db = project.db
        for rid, name, split in ((1, "rec_train", "train"), (2, "rec_test", "test")):
            db["recordings"].insert({"id": rid, "name": name, "split": split, "audio_status": "ok"})
        ids = [db["cycles"].insert({"recording_id": 2, "start": i, "end": i + 0.9, "label": int(lab)}).last_pk
               for i, lab in enumerate(labels)]
    logits = {}
    for run_id, group, seed, keep_matrix in (("t1", "teachers", 1, True), ("t2", "teachers", 2, True),
                                             ("t3", "teachers", 3, True), ("o1", "older", 1, False)):
        logits[run_id] = (rng.normal(size=(N_TEST, 4)) + 1.2 * np.eye(4)[labels]).astype(np.float32)
        final = icbhi_score(labels, logits[run_id].argmax(1))
        metrics = {"sp": final["sp"], "se": final["se"], "score": final["score"], "selection": "last"}
        if keep_matrix:
            metrics["confusion"] = final["confusion"].tolist()
        spec = {"arch": "cnn6", "seed": seed, "group": group, "select": "last", "targets": {"kind": "hard"}}
        runs.insert_run(project, run_id, group=group, kind="teacher", arch="cnn6", seed=seed, spec=spec)
        runs.store_logits(project, run_id, ids, logits[run_id])
        runs.finish(project, run_id, metrics=metrics, checkpoint=None, epoch=1)
    yield project, labels, logits
    workers.cancel_all(wait=10.0)
    project.close()


def test_the_runs_table_shows_two_class_numbers_from_stored_matrices_and_none_where_a_run_has_none(qtbot, study):
    project, labels, logits = study
    model = ProjectModel()
    view = CompareView(model)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    model.set_project(project)
    qtbot.waitUntil(lambda: not view._refresh_pending and not view.data.stale, timeout=LOADED_MS)
    qtbot.waitUntil(lambda: not view.data.is_loading and not view.data.missing(), timeout=LOADED_MS)
    table = view.runs_table
    columns = ("2-class Sp", "2-class Se", "2-class Score")

    per_run = {r: counted(labels, logits[r].argmax(1)) for r in ("t1", "t2", "t3")}
    for run_id, want in per_run.items():
        assert [table.cell(("run", run_id), c) for c in columns] == [f"{want[k]:.2f}" for k in ("sp", "se", "score")]
    group = [f"{np.mean([per_run[r][k] for r in per_run]):.2f} ± {np.std([per_run[r][k] for r in per_run], ddof=1):.2f}"
             for k in ("sp", "se", "score")]
    assert [table.cell(("group", "teachers"), c) for c in columns] == group
    qtbot.waitUntil(lambda: table.cell(("ensemble", "teachers", 3), "2-class Score") not in ("", "-"), timeout=LOADED_MS)
    mean = counted(labels, np.mean([logits[r] for r in per_run], axis=0).argmax(1))
    assert [table.cell(("ensemble", "teachers", 3), c) for c in columns] == [f"{mean[k]:.2f}" for k in ("sp", "se", "score")]
    # A run stored with neither two-class numbers nor a confusion matrix shows none, not a guess.
    assert [table.cell(("run", "o1"), c) for c in columns] == ["-", "-", "-"]
    assert [table.cell(("group", "older"), c) for c in columns] == ["-", "-", "-"]
    assert table.cell(("group", "older"), "Score") != "-"
    model.set_project(None)
