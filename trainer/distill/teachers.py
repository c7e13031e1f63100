"""Choosing the teachers of a student from a group of finished runs: the first k, the k best, or one."""

from __future__ import annotations

import math

from .. import runs
from ..project import Project
from .modes import DistillError

SELECTION_MODES = ("first", "curated", "single")


def selection_for_mode(mode: str) -> str:
    """Which teacher selection a target mode implies: curated -> the k best, single -> one, else first k."""
    return {"curated": "curated", "single": "single"}.get(mode, "first")


def _finished_runs(project: Project, group: str) -> list[runs.Run]:
    """The group's finished runs by seed; other statuses are never used as teachers."""
    group_runs = runs.list_runs(project, group=group)
    if not group_runs:
        raise DistillError(f"no runs in group {group!r}")
    done = [r for r in group_runs if r.finished]
    if not done:
        states = sorted({str(r.status) for r in group_runs})
        raise DistillError(f"group {group!r} has {len(group_runs)} runs but none finished (status: {', '.join(states)})")
    return done


def selection_score(metrics: dict) -> float | None:
    """The score a run's checkpoint was selected by: validation score under ``select=val``, else test score."""
    if metrics.get("selection") == "val" and isinstance(metrics.get("val"), dict):
        return metrics["val"].get("score")
    return metrics.get("score")


def select_teachers(project: Project, group: str, k: int | None, mode: str = "first") -> list[str]:
    """Run ids of the teachers to use from a group of finished runs.

    ``first``: the first k by seed (the paper's first-k teachers). ``curated``: the k best by the
    selection metric, ties broken by lower seed: the validation score for runs whose checkpoint was
    chosen on a validation split (``metrics["selection"] == "val"``), else the stored test
    ``metrics["score"]`` (the paper picked the 5 highest-scoring checkpoints; it only shapes training
    targets, but with test scores it is the reference's optimistic protocol). ``single``: one
    teacher, the first by seed. k = None means every finished run.
    """
    if mode not in SELECTION_MODES:
        raise DistillError(f"unknown teacher selection {mode!r} (expected one of {', '.join(SELECTION_MODES)})")
    finished = _finished_runs(project, group)
    if mode == "single":
        if k not in (None, 1):
            raise DistillError(f"selection 'single' takes one teacher, not k={k}")
        k = 1
    if k is None:
        k = len(finished)
    if k < 1:
        raise DistillError(f"number of teachers must be at least 1, got {k}")
    if k > len(finished):
        raise DistillError(f"group {group!r} has {len(finished)} finished runs, fewer than the {k} teachers asked for")
    if mode == "curated":
        return _best(finished, group, k)
    return [run.id for run in finished[:k]]


def _best(finished: list[runs.Run], group: str, k: int) -> list[str]:
    """The k best by selection score, ties by lower seed. An undefined score (NaN: the split it was taken
    on had no abnormal, or no normal, cycle) cannot be ranked; such runs are never taken as "best",
    and asking for more teachers than there are ranked runs is refused rather than filled by chance."""
    scored, undefined = [], []
    for run in finished:
        score = selection_score(run.metrics)
        if score is None:
            raise DistillError(f"run {run.id} in group {group!r} has no stored score to curate by")
        if not math.isfinite(float(score)):
            undefined.append(run.id)
            continue
        scored.append((-float(score), run.seed if run.seed is not None else math.inf, run.id))
    if k > len(scored):
        raise DistillError(
            f"group {group!r}: curated asks for the {k} best runs but only {len(scored)} have a defined score "
            f"({', '.join(undefined)}: undefined, as their scoring split lacks abnormal or normal cycles); "
            "ask for fewer teachers or take the first k (mode mean)"
        )
    return [run_id for _, _, run_id in sorted(scored)[:k]]
