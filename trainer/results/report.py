"""The paper's tables from stored results: groups over seeds, ensembles, hard against soft labels.

Every number comes from the ``runs`` table (final metrics) or from stored logits (ensembles), and
every row lists the run ids it was computed from, so each figure can be traced back to its runs.
Published numbers (paper 001, REFERENCE.md section 7) are shown beside ours where the architecture
matches, labelled ``published``.

Standard deviations are sample standard deviations over seeds (:func:`trainer.evaluate.mean_std`).
Runs whose checkpoint epoch was picked on the test set (``select=test``, the reference protocol) are
flagged in every format: their test scores are optimistic. A group whose finished runs trained or were
scored on different cycles (runs made before cycle sets, with an import or an edit between them) gets
no mean, no standard deviation and no ensemble, and a note says why: numbers over different data are
not one result.
"""

from __future__ import annotations

import json
import math
from typing import Iterable, Sequence

from .. import runs
from ..evaluate import mean_std, two_class_of
from ..project import Project, ProjectError
from .calibration import collect_calibration
from .ensembles import ensemble_curve
from .published import PUBLISHED, PUBLISHED_BTS_ENSEMBLES, PUBLISHED_BTS_STUDENTS, published_name, published_triplet

ENSEMBLE_KS = (1, 3, 5, 10, 15, 20, 24, 30)
METRICS = ("sp", "se", "score")

TWO_CLASS_NOTE = ("2-class: normal against abnormal (an abnormal cycle predicted as any abnormal class is a hit); "
                  "Sp, Se and Score as in the 4-class metric")
TEST_SELECTION_NOTE = "test*: checkpoint epoch picked on the test set (the reference protocol; optimistic)"


class ReportError(ProjectError):
    """A report that cannot be made (no runs yet, an unknown format)."""


def _one(values: Iterable, mixed: str = "mixed"):
    distinct = sorted({json.dumps(v, sort_keys=True) for v in values})
    if not distinct:
        return None
    return json.loads(distinct[0]) if len(distinct) == 1 else mixed


def _summary(metrics: Sequence[dict]) -> dict:
    out = {}
    for key in METRICS:
        values = [m[key] for m in metrics if m.get(key) is not None and not is_nan(m[key])]
        mean, std = mean_std(values) if values else (None, None)
        out[key] = {"mean": mean, "std": std, "values": values}
    return out


def _two_class_summary(metrics: Sequence[dict]) -> dict:
    """Two-class Sp, Se, Score over runs. A run with neither stored two-class numbers nor a confusion
    matrix leaves the group without them: a mean over some of its seeds would be another result."""
    per_run = [two_class_of(m) for m in metrics]
    if any(one is None for one in per_run):
        return {key: {"mean": None, "std": None, "values": []} for key in METRICS}
    return _summary(per_run)


def is_nan(value) -> bool:
    """An undefined Sp or Se (a split with no normal, or no abnormal, cycle) is stored as NaN."""
    return isinstance(value, float) and math.isnan(value)


def collect_groups(project: Project) -> list[dict]:
    """One entry per run group: what it is, how many finished seeds, mean/std of Sp, Se, Score, run ids."""
    by_group: dict[str, list[runs.Run]] = {}
    for run in runs.list_runs(project):
        by_group.setdefault(run.group or "(no group)", []).append(run)
    groups = []
    for name, group_runs in by_group.items():
        done = [r for r in group_runs if r.finished]
        targets = [r.spec.get("targets") or {"kind": "hard"} for r in group_runs]
        soft = [t for t in targets if t.get("kind") == "soft"]
        entry = {
            "group": name,
            "arch": _one(r.arch for r in group_runs),
            "kind": _one(r.kind for r in group_runs),
            "targets": _one(t.get("kind", "hard") for t in targets),
            "mode": _one(t.get("mode") for t in soft) if soft else "hard",
            "k": _one(t.get("k") for t in soft) if soft else 0,
            "teacher_group": _one(t.get("teacher_group") for t in soft) if soft else None,
            "temperature": _one(t.get("temperature", 1.0) for t in soft) if soft else None,
            "hard_weight": _one(t.get("hard_weight", 0.0) for t in soft) if soft else None,
            "preset": _one(t.get("preset") for t in soft) if soft else None,
            "feature": _one(json.dumps(t.get("feature"), sort_keys=True) for t in soft) if soft else None,
            "passes": _one(t.get("passes") for t in soft) if soft else None,
            "representation": _one(t.get("representation") for t in targets if t.get("kind") == "collab"),
            "peer_weight": _one(t.get("peer_weight") for t in targets if t.get("kind") == "collab"),
            "settings": _one(_settings(r.spec) for r in group_runs),
            "selection": _one((r.metrics.get("selection") or r.spec.get("select")) for r in done) if done else None,
            "n": len(done),
            "seeds": [r.seed for r in done],
            "run_ids": [r.id for r in done],
            "not_finished": {r.id: r.status for r in group_runs if not r.finished},
        }
        entry["cost"] = _cost(group_runs)
        entry.update(_summary([r.metrics for r in done]))
        entry["two_class"] = _two_class_summary([r.metrics for r in done])
        entry["test_selection"] = _uses_test_selection(r.metrics for r in done)
        entry["cycle_sets"] = _by_cycle_set(done)
        if len(entry["cycle_sets"]) > 1:
            for stat in [entry[key] for key in METRICS] + list(entry["two_class"].values()):
                stat["mean"] = stat["std"] = None
        groups.append(entry)
    return groups


def _cost(group_runs: Sequence[runs.Run]) -> dict | None:
    """Parameters and MACs per cycle of the group's model, built with its runs' own settings; None when
    its runs differ in them or the model cannot be built here (then no number is shown rather than a wrong one)."""
    from ..models import ModelError, model_cost

    shapes = {(r.arch, json.dumps(r.spec.get("model_args") or {}, sort_keys=True)) for r in group_runs}
    if len(shapes) != 1:
        return None
    arch, args = shapes.pop()
    try:
        return model_cost(arch, json.loads(args))
    except (ModelError, TypeError, ValueError, ImportError, RuntimeError):
        return None


def _by_cycle_set(done: Sequence[runs.Run]) -> list[list[str]]:
    """Run ids grouped by the data they trained and were scored on (the fingerprint of their cycle set)."""
    by_data: dict[str, list[str]] = {}
    for run in done:
        if run.data_fingerprint:  # rows written by hand in tests and tools may have none: nothing to compare
            by_data.setdefault(run.data_fingerprint, []).append(run.id)
    return list(by_data.values())


def mixed_cycle_set_notes(groups: list[dict]) -> list[str]:
    return [
        f"{g['group']}: its {g['n']} runs trained on {len(g['cycle_sets'])} different cycle sets ("
        + "; ".join(", ".join(ids) for ids in g["cycle_sets"]) + "): no mean, std or ensemble is given; "
        "train the seeds again in one new group" for g in groups if len(g["cycle_sets"]) > 1
    ]


# Spec fields that do not change what a run learns, or that differ between the runs compared on purpose.
_NOT_SETTINGS = ("seed", "group", "targets", "device", "eval_batch_size")


def _settings(spec: dict) -> dict:
    """The training settings of a run apart from its seed, group and targets (hard and soft must share them)."""
    return {k: v for k, v in spec.items() if k not in _NOT_SETTINGS}


def _uses_test_selection(metrics: Iterable[dict]) -> bool:
    return any(m.get("selection") == "test" for m in metrics)


def collect_ensembles(project: Project, groups: list[dict], ks: Sequence[int] = ENSEMBLE_KS, split: str = "test") -> list[dict]:
    """Ensembles of each group with at least two finished runs: at the common ks it reaches and at k = all."""
    out = []
    for group in groups:
        if group["n"] < 2:
            continue
        if len(group["cycle_sets"]) > 1:
            out.append({"group": group["group"], "error": "its runs trained on different cycle sets"})
            continue
        wanted = sorted({k for k in ks if k <= group["n"]} | {group["n"]})
        try:
            curve = ensemble_curve(project, group["run_ids"], wanted, split=split)
        except ProjectError as exc:
            out.append({"group": group["group"], "error": str(exc)})
            continue
        selections = _run_metrics(project, group["run_ids"])
        for point in curve:
            out.append({
                "group": group["group"],
                "arch": group["arch"],
                "kind": group["kind"],
                "generation": 2 if group["kind"] == "student" else 1,
                "k": point["k"],
                "all": point["k"] == group["n"],
                "sp": point["metrics"]["sp"],
                "se": point["metrics"]["se"],
                "score": point["metrics"]["score"],
                "two_class": two_class_of(point["metrics"]),
                "n_cycles": point["n_cycles"],
                "run_ids": point["run_ids"],
                "test_selection": _uses_test_selection(selections[: point["k"]]),
            })
    return out


def _run_metrics(project: Project, run_ids: Sequence[str]) -> list[dict]:
    return [runs.get_run(project, run_id).metrics for run_id in run_ids]


def _hard_baseline(soft: dict, groups: list[dict]) -> tuple[dict | None, bool]:
    """The hard-label group to compare a student group with: same architecture, preferably the same
    training settings (epochs, batch, lr, selection, ...), then the most finished seeds, then by name.
    Returns (group, whether the settings match)."""
    candidates = [g for g in groups if g["targets"] == "hard" and g["n"] and g["arch"] == soft["arch"]]
    if not candidates:
        return None, False
    same = [g for g in candidates if g["settings"] == soft["settings"] and g["settings"] != "mixed"]
    pool = same or candidates
    best = sorted(pool, key=lambda g: (-g["n"], g["group"]))[0]
    return best, bool(same)


def collect_hard_vs_soft(groups: list[dict]) -> list[dict]:
    """Each student group against the hard-label group of its architecture (see :func:`_hard_baseline`)."""
    rows = []
    for g in groups:
        if g["targets"] != "soft" or not g["n"] or not isinstance(g["arch"], str):
            continue
        hard, same_settings = _hard_baseline(g, groups)
        row = {
            "same_settings": same_settings,
            "arch": g["arch"],
            "soft_group": g["group"],
            "mode": g["mode"],
            "k": g["k"],
            "teacher_group": g["teacher_group"],
            "hard_group": hard["group"] if hard else None,
            "soft": {key: g[key] for key in METRICS},
            "hard": {key: hard[key] for key in METRICS} if hard else None,
            "gain": (g["score"]["mean"] - hard["score"]["mean"]) if hard and hard["score"]["mean"] is not None
            and g["score"]["mean"] is not None else None,
            "soft_run_ids": g["run_ids"],
            "hard_run_ids": hard["run_ids"] if hard else [],
            "test_selection": g["test_selection"] or bool(hard and hard["test_selection"]),
        }
        rows.append(row)
    return rows


def collect_published(groups: list[dict], ensembles: list[dict]) -> list[dict]:
    """Published rows for the architectures (and BTS modes / ensembles) present in this project."""
    rows = []
    seen = set()
    for g in groups:
        name = published_name(g["arch"] if isinstance(g["arch"], str) else None)
        if name and name not in seen:
            seen.add(name)
            table = PUBLISHED[name]
            soft, hard = table["soft"], table["hard"]
            rows.append({"model": name, "what": "hard label", **published_triplet(hard)})
            rows.append({"model": name, "what": "soft label (mean teacher, k=5 BTS++ teachers)", **published_triplet(soft)})
            rows.append({"model": name, "what": "gain", "score": {"mean": round(soft[2][0] - hard[2][0], 2), "std": None},
                         "sp": {"mean": None, "std": None}, "se": {"mean": None, "std": None}})
    if "BTS" in seen:
        for (mode, k), values in PUBLISHED_BTS_STUDENTS.items():
            rows.append({"model": "BTS-d", "what": f"{mode}" + (f" k={k}" if k else ""), **published_triplet(values)})
        for (kind, k), values in PUBLISHED_BTS_ENSEMBLES.items():
            label = "BTS++" if kind == "teacher" else "BTS-d++ (second generation)"
            rows.append({"model": label, "what": f"ensemble k={k}", **published_triplet(values)})
    return rows


def assemble_report(project: Project, groups: list[dict], ensembles: list[dict], split: str = "test") -> dict:
    """The report (without calibration) from its collected parts: what `rsc report` and the Compare view show."""
    return {
        "project": str(project.path),
        "split": split,
        "groups": groups,
        "ensembles": ensembles,
        "hard_vs_soft": collect_hard_vs_soft(groups),
        "published": collect_published(groups, ensembles),
        "notes": [
            "mean ± sample standard deviation (ddof=1) over finished seeds; ensembles are single results",
            TWO_CLASS_NOTE,
            TEST_SELECTION_NOTE,
            *mixed_cycle_set_notes(groups),
        ],
    }


def build_report(project: Project, split: str = "test", calibration_bins: int | None = None) -> dict:
    """The report; with ``calibration_bins`` also each group's calibration (ECE over that many bins)."""
    groups = collect_groups(project)
    if not groups:
        raise ReportError(f"{project.path.name}: no runs yet (train some with `rsc train`)")
    ensembles = collect_ensembles(project, groups, split=split)
    report = assemble_report(project, groups, ensembles, split)
    if calibration_bins is not None:
        report["calibration"] = collect_calibration(project, groups, bins=calibration_bins, split=split)
        report["notes"].append(
            f"ECE: expected calibration error of the max softmax probability over {calibration_bins} equal-width "
            "bins, as a fraction; an ensemble's probabilities are the softmax of its mean logits"
        )
    return report
