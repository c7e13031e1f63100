"""Ensembles computed from stored logits: argmax of the mean logits of a set of runs.

Nothing is re-run: an ensemble of teachers (BTS++ in the paper), a teacher-count curve, and a
second-generation ensemble of distilled students (BTS-d++) all read the ``outputs`` table. Labels
are read from the cycles table when the ensemble is scored, so a relabelled cycle counts with its
current label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .. import runs
from ..evaluate import icbhi_score
from ..project import Project, ProjectError


class EnsembleError(ProjectError):
    """An ensemble that cannot be formed (no runs, no shared cycles, unknown group)."""


@dataclass
class EnsembleOutputs:
    run_ids: list[str]
    cycle_ids: np.ndarray  # (N,)
    labels: np.ndarray  # (N,) current labels from the cycles table
    logits: np.ndarray  # (N, K, C) each run's stored logits
    excluded: int  # live cycles of the split left out because some run has no logits for them

    @property
    def mean_logits(self) -> np.ndarray:
        return self.logits.mean(axis=1)

    def predictions(self, k: int | None = None) -> np.ndarray:
        """Argmax of the mean logits of the first k runs (all when k is None)."""
        part = self.logits if k is None else self.logits[:, :k]
        return part.mean(axis=1).argmax(axis=1)


def group_runs(project: Project, group: str, finished_only: bool = True) -> list[runs.Run]:
    """The runs of a group ordered by seed (then id)."""
    found = runs.list_runs(project, group=group)
    if not found:
        known = runs.group_names(project)
        raise EnsembleError(
            f"no runs in group {group!r}" + (f" (groups: {', '.join(map(str, known))})" if known else " (no runs yet)")
        )
    return [r for r in found if r.finished] if finished_only else found


def resolve_runs(project: Project, group_or_runs: str | Sequence[str], k: int | None = None) -> list[str]:
    """Run ids: the first k finished runs of a group by seed, or the given ids (first k of them)."""
    if isinstance(group_or_runs, str):
        found = group_runs(project, group_or_runs)
        if not found:
            raise EnsembleError(f"group {group_or_runs!r} has no finished runs")
        run_ids = [r.id for r in found]
        label = f"group {group_or_runs!r}"
    else:
        run_ids = [str(r) for r in group_or_runs]
        if not run_ids:
            raise EnsembleError("no runs given for the ensemble")
        for run_id in run_ids:
            if not runs.run_exists(project, run_id):
                raise EnsembleError(f"no run {run_id!r} in {project.path.name}")
        if len(set(run_ids)) != len(run_ids):
            raise EnsembleError("a run is listed twice for the ensemble")
        label = "the given runs"
    if k is not None:
        if k < 1:
            raise EnsembleError(f"an ensemble needs k >= 1, got {k}")
        if k > len(run_ids):
            raise EnsembleError(f"{label} has {len(run_ids)} finished runs, fewer than k={k}")
        run_ids = run_ids[:k]
    return run_ids


def ensemble_logits(project: Project, run_ids: Sequence[str], split: str | None = "test") -> EnsembleOutputs:
    """Stored logits of the runs on the live cycles of a split that every run has outputs for."""
    run_ids = list(run_ids)
    cycles = project.cycles(split=split)
    if not cycles:
        raise EnsembleError(f"no cycles in split {split!r}")
    shared = {c["id"] for c in cycles}
    wanted = len(shared)
    for run_id in run_ids:
        have = set(runs.run_cycle_ids(project, run_id))
        if not have:
            raise EnsembleError(f"run {run_id} has no stored outputs (not finished, or trained before outputs were kept)")
        shared &= have
    if not shared:
        raise EnsembleError(f"the runs {', '.join(run_ids)} share no stored outputs on split {split!r}")
    ids = np.array(sorted(shared), dtype=np.int64)
    label_of = {c["id"]: c["label"] for c in cycles}
    labels = np.array([label_of[i] for i in ids], dtype=np.int64)
    logits = runs.load_logits(project, run_ids, ids.tolist())
    return EnsembleOutputs(run_ids, ids, labels, logits.astype(np.float64), wanted - len(ids))


def _score(labels: np.ndarray, predictions: np.ndarray) -> dict:
    metrics = dict(icbhi_score(labels, predictions))
    confusion = metrics.get("confusion")
    if isinstance(confusion, np.ndarray):
        metrics["confusion"] = confusion.tolist()
    return metrics


def ensemble_score(
    project: Project,
    group_or_runs: str | Sequence[str],
    k: int | None = None,
    split: str | None = "test",
) -> dict:
    """ICBHI metrics of the argmax of the mean stored logits of the first k runs (or all, or the given ids)."""
    run_ids = resolve_runs(project, group_or_runs, k)
    outputs = ensemble_logits(project, run_ids, split)
    metrics = _score(outputs.labels, outputs.predictions())
    return {
        "metrics": metrics,
        "run_ids": run_ids,
        "k": len(run_ids),
        "group": group_or_runs if isinstance(group_or_runs, str) else None,
        "split": split,
        "n_cycles": int(len(outputs.cycle_ids)),
        "excluded_cycles": int(outputs.excluded),
    }


def ensemble_curve(
    project: Project,
    group_or_runs: str | Sequence[str],
    ks: Sequence[int] | None = None,
    split: str | None = "test",
) -> list[dict]:
    """Ensemble metrics at each k (first k runs by seed) from one read of the stored logits.

    Every k is scored on the cycles all runs up to the largest k share, so the points are comparable.
    """
    run_ids = resolve_runs(project, group_or_runs)
    ks = sorted({int(k) for k in (ks or range(1, len(run_ids) + 1)) if 1 <= int(k) <= len(run_ids)})
    if not ks:
        return []
    outputs = ensemble_logits(project, run_ids[: ks[-1]], split)
    curve = []
    for k in ks:
        metrics = _score(outputs.labels, outputs.predictions(k))
        curve.append({"k": k, "metrics": metrics, "run_ids": run_ids[:k], "n_cycles": int(len(outputs.cycle_ids))})
    return curve
