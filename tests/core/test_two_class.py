"""Two-class evaluation (normal against any abnormal) beside the 4-class ICBHI score, in the metric and the report.

Runs are inserted directly with stored logits and final metrics as the trainer writes them (Sp, Se,
Score and the confusion matrix, no two-class numbers: as every run made before they existed), so each
expected number is counted here with numpy from the same logits.
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from trainer import runs
from trainer.evaluate import confusion_matrix, icbhi_score, two_class_of, two_class_score
from trainer.project import Project
from trainer.results import build_report, render

N_TEST = 80


def counted(labels: np.ndarray, predictions: np.ndarray) -> dict:
    """Two-class Sp/Se/Score in percent, counted without trainer.evaluate."""
    normal, abnormal = labels == 0, labels != 0
    sp = 100.0 * np.sum(predictions[normal] == 0) / np.sum(normal)
    se = 100.0 * np.sum(predictions[abnormal] != 0) / np.sum(abnormal)
    return {"sp": sp, "se": se, "score": (sp + se) / 2}


def test_an_abnormal_cycle_called_any_abnormal_class_is_a_two_class_hit_but_not_a_four_class_one():
    # Normal: 0->0, 0->1, 0->0. Abnormal: crackle->wheeze, wheeze->wheeze, both->normal, both->crackle, crackle->normal.
    result = icbhi_score([0, 0, 0, 1, 2, 3, 3, 1], [0, 1, 0, 2, 2, 0, 1, 0])
    assert result["se"] == pytest.approx(100 * 1 / 5)  # only wheeze->wheeze is a 4-class hit
    assert result["two_class"]["sp"] == pytest.approx(100 * 2 / 3) == pytest.approx(result["sp"])
    assert result["two_class"]["se"] == pytest.approx(100 * 3 / 5)
    assert result["two_class"]["score"] == pytest.approx((100 * 2 / 3 + 60) / 2)


def test_two_class_numbers_equal_an_independent_count_on_random_predictions():
    rng = np.random.default_rng(7)
    for _ in range(20):
        labels, predictions = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
        got = icbhi_score(labels, predictions)["two_class"]
        want = counted(labels, predictions)
        assert got == pytest.approx(want)
        assert two_class_score(confusion_matrix(labels, predictions)) == pytest.approx(want)


def test_a_split_without_abnormal_or_normal_cycles_has_an_undefined_two_class_se_or_sp():
    only_normal = icbhi_score([0, 0, 0], [0, 1, 0])["two_class"]
    assert math.isnan(only_normal["se"]) and math.isnan(only_normal["score"])
    assert only_normal["sp"] == pytest.approx(100 * 2 / 3)
    only_abnormal = icbhi_score([1, 2, 3], [2, 0, 3])["two_class"]
    assert math.isnan(only_abnormal["sp"]) and only_abnormal["se"] == pytest.approx(100 * 2 / 3)


def test_stored_metrics_give_their_two_class_numbers_or_none_never_a_made_up_one():
    labels, predictions = np.array([0, 0, 1, 2, 3, 0]), np.array([0, 2, 3, 0, 1, 0])
    stored = {key: value for key, value in icbhi_score(labels, predictions).items() if key != "two_class"}
    stored["confusion"] = stored["confusion"].tolist()
    assert two_class_of(json.loads(json.dumps(stored))) == pytest.approx(counted(labels, predictions))
    # Numbers stored with the run win; strict JSON's null is an undefined value, not zero.
    assert two_class_of({"two_class": {"sp": 50.0, "se": None, "score": None}})["sp"] == 50.0
    assert math.isnan(two_class_of({"two_class": {"sp": 50.0, "se": None, "score": None}})["se"])
    assert two_class_of({"sp": 50.0, "se": 40.0, "score": 45.0}) is None
    assert two_class_of({"confusion": [[1, 2], [3, 4]]}) is None
    assert two_class_of({"confusion": [[1, 0, 0, 0]] * 3}) is None


class Study:
    """One train and one test recording; groups of runs whose final metrics are what the trainer stores."""

    def __init__(self, path):
        self.project = Project.create(path)
        self.rng = np.random.default_rng(11)
        self.labels = self.rng.integers(0, 4, N_TEST)
        self.labels[:25] = 0
        with self.project.transaction():
            db = self.project.db
            for rid, name, split in ((1, "rec_train", "train"), (2, "rec_test", "test")):
                db["recordings"].insert({"id": rid, "name": name, "split": split, "audio_status": "ok"})
            self.ids = [db["cycles"].insert({"recording_id": 2, "start": i, "end": i + 0.9, "label": int(lab)}).last_pk
                        for i, lab in enumerate(self.labels)]
        self.logits: dict[str, np.ndarray] = {}

    def add(self, run_id, group, seed, with_confusion=True):
        logits = (self.rng.normal(size=(N_TEST, 4)) + 1.1 * np.eye(4)[self.labels]).astype(np.float32)
        final = icbhi_score(self.labels, logits.argmax(1))
        metrics = {"sp": final["sp"], "se": final["se"], "score": final["score"], "n": final["n"], "selection": "last"}
        if with_confusion:
            metrics["confusion"] = final["confusion"].tolist()
        spec = {"arch": "cnn6", "seed": seed, "group": group, "select": "last", "targets": {"kind": "hard"}}
        runs.insert_run(self.project, run_id, group=group, kind="teacher", arch="cnn6", seed=seed, spec=spec)
        runs.store_logits(self.project, run_id, self.ids, logits)
        runs.finish(self.project, run_id, metrics=metrics, checkpoint=None, epoch=1)
        self.logits[run_id] = logits


@pytest.fixture
def study(tmp_path):
    s = Study(tmp_path / "two-class.rsc")
    for seed in (1, 2, 3):
        s.add(f"t{seed}", "teachers", seed)
    s.add("o1", "older", 1)
    s.add("o2", "older", 2, with_confusion=False)  # a run that kept neither two-class numbers nor a matrix
    yield s
    s.project.close()


def test_the_report_gives_each_group_two_class_mean_and_std_computed_from_the_stored_confusion(study):
    report = build_report(study.project)
    groups = {g["group"]: g for g in report["groups"]}
    per_run = [counted(study.labels, study.logits[f"t{s}"].argmax(1)) for s in (1, 2, 3)]
    for key in ("sp", "se", "score"):
        values = [one[key] for one in per_run]
        assert groups["teachers"]["two_class"][key]["mean"] == pytest.approx(np.mean(values))
        assert groups["teachers"]["two_class"][key]["std"] == pytest.approx(np.std(values, ddof=1))
    # A group with one run that cannot say gets no two-class numbers; its 4-class ones stand.
    assert all(groups["older"]["two_class"][k]["mean"] is None for k in ("sp", "se", "score"))
    assert groups["older"]["score"]["mean"] is not None

    ensemble = next(e for e in report["ensembles"] if e["group"] == "teachers" and e["k"] == 3)
    mean = np.mean([study.logits[f"t{s}"] for s in (1, 2, 3)], axis=0)
    assert ensemble["two_class"] == pytest.approx(counted(study.labels, mean.argmax(1)))

    md = render(report, "md")
    header = next(line for line in md.splitlines() if line.startswith("| group |"))
    assert "| 2-class Sp | 2-class Se | 2-class Score |" in header
    row = next(line for line in md.splitlines() if line.startswith("| teachers |"))
    score = groups["teachers"]["two_class"]["score"]
    assert f"{score['mean']:.2f} ± {score['std']:.2f}" in row
    first = header.split(" | ").index("2-class Sp")
    older = next(line for line in md.splitlines() if line.startswith("| older |")).split(" | ")
    assert older[first : first + 3] == ["-", "-", "-"]

    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    teachers = next(r for r in rows if r["table"] == "groups" and r["group"] == "teachers")
    assert float(teachers["two_class_se_mean"]) == pytest.approx(groups["teachers"]["two_class"]["se"]["mean"])
    assert float(teachers["two_class_se_std"]) == pytest.approx(groups["teachers"]["two_class"]["se"]["std"])
    assert next(r for r in rows if r["group"] == "older")["two_class_score_mean"] == ""
    ens_row = next(r for r in rows if r["table"] == "ensembles" and r["group"] == "teachers" and r["k"] == "3")
    assert float(ens_row["two_class_score_mean"]) == pytest.approx(ensemble["two_class"]["score"])

    latex = render(report, "latex")
    assert "2-class Score" in latex and f"{score['mean']:.2f} $\\pm$ {score['std']:.2f}" in latex
    data = json.loads(render(report, "json"))
    assert {g["group"]: g for g in data["groups"]}["older"]["two_class"]["sp"]["mean"] is None
