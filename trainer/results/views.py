"""The Compare view's numbers from stored outputs read once per run, Qt-free.

``rsc report`` reads every group's logits each time it runs; a view that redraws on every click
cannot. Here each run's stored outputs on the split are read once (:func:`read_run_outputs`, deleted
cycles included), kept, and stacked into a group's outputs on the cycles as they are now
(:func:`stack_outputs`: what :func:`~trainer.results.ensembles.ensemble_logits` would return), so a
relabel, a delete or its undo re-scores without reading logits again, and a run that finishes adds one
run's read. :func:`ensemble_entries` and :func:`assemble_report` then give exactly what
:func:`~trainer.results.report.build_report` gives, so an export from the view equals ``rsc report``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .. import runs
from ..evaluate import icbhi_score
from ..project import Project, ProjectError
from .ensembles import EnsembleOutputs
from .report import ENSEMBLE_KS, assemble_report, collect_hard_vs_soft  # noqa: F401  (assemble_report: re-exported for the view)

METRICS = ("sp", "se", "score")


@dataclass
class SplitCycles:
    """The live cycles of a split as the view lists them: ids (ascending) and, per cycle, what opens it."""

    ids: np.ndarray
    labels: np.ndarray
    recording_ids: np.ndarray
    recordings: np.ndarray  # recording names (object)
    starts: np.ndarray
    ends: np.ndarray

    def rows(self, cycle_ids: Iterable[int]) -> np.ndarray:
        """Positions of the given cycle ids in this split (every id must be in it)."""
        return np.searchsorted(self.ids, np.asarray(list(cycle_ids), dtype=np.int64))


def split_cycles(project: Project, split: str | None = "test") -> SplitCycles:
    cycles = sorted(project.cycles(split=split), key=lambda c: c["id"])
    return SplitCycles(
        ids=np.array([c["id"] for c in cycles], dtype=np.int64),
        labels=np.array([c["label"] for c in cycles], dtype=np.int64),
        recording_ids=np.array([c["recording_id"] for c in cycles], dtype=np.int64),
        recordings=np.array([c["recording"] for c in cycles], dtype=object),
        starts=np.array([c["start"] for c in cycles], dtype=np.float64),
        ends=np.array([c["end"] for c in cycles], dtype=np.float64),
    )


def split_cycle_ids(project: Project, split: str | None = "test") -> np.ndarray:
    """Every cycle id of the split, deleted ones too: their outputs stay, and an undone delete brings them back."""
    return np.array(sorted(c["id"] for c in project.cycles(split=split, include_deleted=True)), dtype=np.int64)


@dataclass
class RunOutputs:
    """One run's stored logits on the cycles of a split it has outputs for, ascending cycle ids."""

    cycle_ids: np.ndarray
    logits: np.ndarray  # (n, classes) float32, as stored


def read_run_outputs(project: Project, run_id: str, split_ids: np.ndarray) -> RunOutputs | str:
    """A run's outputs on the split, or why it has none (the words of ensemble_logits)."""
    have = runs.run_cycle_ids(project, run_id)
    if not have:
        return f"run {run_id} has no stored outputs (not finished, or trained before outputs were kept)"
    ids = np.intersect1d(np.asarray(have, dtype=np.int64), split_ids)
    try:
        logits = runs.load_logits(project, run_id, ids.tolist())[:, 0] if ids.size else np.zeros((0, 4), np.float32)
    except ProjectError as exc:
        return str(exc)
    return RunOutputs(ids, logits)


def stack_outputs(run_ids: Sequence[str], read: dict[str, RunOutputs | str], cycles: SplitCycles,
                  split: str | None = "test") -> EnsembleOutputs | str:
    """What :func:`~trainer.results.ensembles.ensemble_logits` returns for these runs, from their outputs read
    earlier, on the split's cycles as they are now (live ones, current labels); or its error text."""
    if not run_ids:
        return "no finished runs"
    if not cycles.ids.size:
        return f"no cycles in split {split!r}"
    shared = cycles.ids
    for run_id in run_ids:
        outputs = read[run_id]
        if isinstance(outputs, str):
            return outputs
        shared = np.intersect1d(shared, outputs.cycle_ids)
    if not shared.size:
        return f"the runs {', '.join(run_ids)} share no stored outputs on split {split!r}"
    logits = np.stack([read[r].logits[np.searchsorted(read[r].cycle_ids, shared)] for r in run_ids], axis=1)
    labels = cycles.labels[cycles.rows(shared)]
    return EnsembleOutputs(list(run_ids), shared, labels, logits.astype(np.float64), int(cycles.ids.size - shared.size))


def first_runs(outputs: EnsembleOutputs, k: int) -> EnsembleOutputs:
    return EnsembleOutputs(outputs.run_ids[:k], outputs.cycle_ids, outputs.labels, outputs.logits[:, :k],
                           outputs.excluded)


# -- the report's numbers ------------------------------------------------------------------------------
def _test_selected(metrics: Iterable[dict]) -> bool:
    return any(m.get("selection") == "test" for m in metrics)


def ensemble_entries(group: dict, outputs: EnsembleOutputs | str, run_metrics: dict[str, dict],
                     ks: Sequence[int] = ENSEMBLE_KS) -> list[dict]:
    """The ensemble rows :func:`~trainer.results.report.collect_ensembles` makes for one group (none below
    two finished runs), from its outputs already read. ``run_metrics``: final metrics by run id."""
    if group["n"] < 2:
        return []
    if isinstance(outputs, str):
        return [{"group": group["group"], "error": outputs}]
    wanted = sorted({k for k in ks if k <= group["n"]} | {group["n"]})
    selections = [run_metrics[run_id] for run_id in group["run_ids"]]
    rows = []
    for k in wanted:
        metrics = icbhi_score(outputs.labels, outputs.predictions(k))
        rows.append({
            "group": group["group"], "arch": group["arch"], "kind": group["kind"],
            "generation": 2 if group["kind"] == "student" else 1,
            "k": k, "all": k == group["n"],
            "sp": metrics["sp"], "se": metrics["se"], "score": metrics["score"], "two_class": metrics["two_class"],
            "n_cycles": int(len(outputs.cycle_ids)), "run_ids": list(group["run_ids"][:k]),
            "test_selection": _test_selected(selections[:k]),
        })
    return rows


# -- the paper's figures ---------------------------------------------------------------------------------
def ensemble_curve_of(outputs: EnsembleOutputs) -> dict[str, list]:
    """Sp, Se and Score of the ensemble of the first k runs for every k (paper Figure 2)."""
    out: dict[str, list] = {"k": [], "sp": [], "se": [], "score": []}
    for k in range(1, len(outputs.run_ids) + 1):
        metrics = icbhi_score(outputs.labels, outputs.predictions(k))
        out["k"].append(k)
        for key in METRICS:
            out[key].append(metrics[key])
    return out


_SWEEP_NAME = re.compile(r"^(?P<prefix>.+)-k(?P<k>\d+)$")


def _k0_group(members: list[dict], groups: list[dict], hard_vs_soft: list[dict]) -> dict | None:
    """The hard-label point at k = 0: the sweep's own ``PREFIX-k0`` group, else the report's hard baseline."""
    by_name = {g["group"]: g for g in groups}
    prefixes = {m.group("prefix") for m in (_SWEEP_NAME.match(g["group"]) for g in members) if m}
    for prefix in sorted(prefixes):
        found = by_name.get(f"{prefix}-k0")
        if found is not None and found["targets"] == "hard" and found["n"]:
            return found
    names = {g["group"] for g in members}
    for row in hard_vs_soft:
        if row["soft_group"] in names and row["hard_group"]:
            return by_name[row["hard_group"]]
    return None


def student_curves(groups: list[dict], hard_vs_soft: list[dict] | None = None) -> list[dict]:
    """Students' mean and std over seeds against the number of teachers (paper Figure 3).

    One curve per (teacher group, architecture, mode, temperature, hard-label weight); its k = 0 point is
    the hard-label group the students are compared with.
    """
    hard_vs_soft = collect_hard_vs_soft(groups) if hard_vs_soft is None else hard_vs_soft
    families: dict[tuple, list[dict]] = {}
    for g in groups:
        if g["targets"] != "soft" or not g["n"] or not isinstance(g["k"], int) or not isinstance(g["arch"], str):
            continue
        key = (str(g["teacher_group"]), g["arch"], str(g["mode"]), g["temperature"], g["hard_weight"])
        families.setdefault(key, []).append(g)
    curves = []
    for (teachers, arch, mode, temperature, hard_weight), members in sorted(families.items(), key=lambda i: str(i[0])):
        points = [_point(g, g["k"]) for g in sorted(members, key=lambda g: (g["k"], g["group"]))]
        baseline = _k0_group(members, groups, hard_vs_soft)
        if baseline is not None:
            points.insert(0, _point(baseline, 0))
        label = f"{arch} {mode} from {teachers}"
        if temperature not in (None, 1.0) or hard_weight not in (None, 0.0):
            label += f" (T={temperature}, hard {hard_weight})"
        curves.append({"label": label, "teacher_group": teachers, "arch": arch, "mode": mode, "points": points})
    return curves


def _point(group: dict, k: int) -> dict:
    return {"k": k, "group": group["group"], "n": group["n"],
            **{key: (group[key]["mean"], group[key]["std"]) for key in METRICS}}


# -- confusion matrices and settings ------------------------------------------------------------------------
def cell_rows(labels: np.ndarray, predictions: np.ndarray, label: int, predicted: int) -> np.ndarray:
    """Positions of the cycles labelled ``label`` and predicted ``predicted``, in cycle-id order."""
    return np.flatnonzero((np.asarray(labels) == label) & (np.asarray(predictions) == predicted))


def row_proportions(confusion: np.ndarray) -> np.ndarray:
    """Each row of a confusion matrix as shares of its label's cycles (a label without cycles: zeros)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    totals = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)


def flatten_settings(spec: dict, prefix: str = "") -> dict[str, object]:
    """A spec as dotted keys (``targets.mode``); lists stay values (a teacher list is one setting)."""
    out: dict[str, object] = {}
    for key, value in spec.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten_settings(value, name + "."))
        else:
            out[name] = value
    return out


def differing_settings(specs: dict[str, dict], only_differences: bool = True) -> tuple[list[str], dict[str, dict]]:
    """(keys, per run id its flattened settings): the keys whose values differ between the runs, sorted
    (every key when ``only_differences`` is false, or when there is one run)."""
    flat = {run_id: flatten_settings(spec) for run_id, spec in specs.items()}
    keys = sorted(set().union(*flat.values())) if flat else []
    if only_differences and len(flat) > 1:
        keys = [k for k in keys if len({repr(f.get(k, _ABSENT)) for f in flat.values()}) > 1]
    return keys, flat


class _Absent:
    def __repr__(self) -> str:
        return "(not set)"


_ABSENT = _Absent()


def spread(values: Sequence[Sequence[float | None]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step over runs of different lengths: (mean, sample std, count); None and NaN are left out."""
    width = max((len(v) for v in values), default=0)
    table = np.full((len(values), width), np.nan)
    for i, row in enumerate(values):
        table[i, : len(row)] = [math.nan if v is None else v for v in row]
    count = np.isfinite(table).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(table, axis=0) / np.where(count, count, 1)
        squares = np.nansum((table - mean) ** 2, axis=0)
        std = np.sqrt(squares / np.where(count > 1, count - 1, 1))
    mean[count == 0] = np.nan
    std[count < 2] = 0.0
    return mean, std, count

