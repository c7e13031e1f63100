"""The teacher-count study (paper Figures 2 and 3): students distilled from k teachers, k = 0, 1, 3, ...

For each k and each seed one student run is planned: k = 0 is plain hard-label training of the
student architecture (the left end of the paper's curves); k >= 1 distils from k teachers of the
teacher group (the first k by seed, or the k best for ``curated``). The runs are ordinary queued
runs (jobs), so a sweep can run in the foreground (``rsc sweep`` runs the worker loop on exactly its
runs), in a worker, or on a cluster, and re-planning it finds the runs that already exist instead of
training them again.

The results table puts, for each k, the students' mean and standard deviation of Sp, Se and Score
beside the teacher ensemble's score at the same k, all computed from stored outputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from .. import runs
from ..distill import DistillError, select_teachers, selection_for_mode
from ..evaluate import mean_std
from ..project import Project, ProjectError
from .ensembles import ensemble_score

DEFAULT_KS = (0, 1, 3, 5, 10)


class SweepError(ProjectError):
    """A sweep that cannot be planned (unknown group, too few teachers, bad k)."""


def parse_ks(text: str | Sequence[int]) -> list[int]:
    """'0,1,3,5,10' -> [0, 1, 3, 5, 10]; ranges like '0-5' work too."""
    if not isinstance(text, str):
        ks = [int(k) for k in text]
    else:
        ks = []
        for part in text.replace(" ", "").split(","):
            if not part:
                continue
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m:
                raise SweepError(f"bad teacher counts {text!r}: expected e.g. 0,1,3,5,10")
            first, last = int(m.group(1)), int(m.group(2) or m.group(1))
            ks.extend(range(first, last + 1))
    if not ks:
        raise SweepError("no teacher counts given")
    if any(k < 0 for k in ks):
        raise SweepError("teacher counts must be 0 or more")
    return sorted(set(ks))


def sweep_group(prefix: str, k: int) -> str:
    return f"{prefix}-k{k}"


def default_prefix(teachers_group: str, arch: str, mode: str) -> str:
    return f"sweep-{teachers_group}-{arch}-{mode}"


@dataclass
class PlannedRun:
    k: int
    seed: int
    spec: object  # trainer.train.TrainSpec
    run_id: str | None = None  # an existing run of the same group and seed, when there is one
    status: str | None = None


@dataclass
class SweepPlan:
    teachers_group: str
    arch: str
    mode: str
    prefix: str
    ks: list[int]
    seeds: list[int]
    runs: list[PlannedRun] = field(default_factory=list)

    @property
    def specs(self) -> list:
        return [r.spec for r in self.runs]

    def groups(self) -> dict[int, str]:
        return {k: sweep_group(self.prefix, k) for k in self.ks}


def plan_sweep(
    project: Project,
    teachers_group: str,
    arch: str,
    ks: Sequence[int],
    seeds: Sequence[int],
    mode: str = "mean",
    *,
    prefix: str | None = None,
    temperature: float = 1.0,
    hard_weight: float = 0.0,
    noise_var: float = 0.1,
    **train_settings,
) -> SweepPlan:
    """One run spec per (k, seed); existing runs of the same group and seed are found, not duplicated.

    ``train_settings`` are further :class:`trainer.train.TrainSpec` fields (epochs, batch_size, lr,
    select, device, ...) applied to every run, so hard and soft students differ only in their targets.
    """
    from ..train import TrainSpec  # here, so that reading results never loads the training code

    ks = parse_ks(ks)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise SweepError("no seeds given")
    if mode == "hard":
        raise SweepError("the sweep distils students; k = 0 already gives the hard-label runs")
    prefix = prefix or default_prefix(teachers_group, arch, mode)
    if mode == "single" and any(k > 1 for k in ks):
        raise SweepError("mode 'single' takes one teacher: use --ks 0,1")
    plan = SweepPlan(teachers_group, arch, mode, prefix, ks, seeds)
    teachers_by_k: dict[int, list[str]] = {}
    for k in ks:
        if k == 0:
            continue
        try:
            teachers_by_k[k] = select_teachers(project, teachers_group, k, selection_for_mode(mode))
        except DistillError as exc:
            raise SweepError(f"k={k}: {exc}") from None
    existing = _existing_runs(project, prefix)
    for k in ks:
        targets = {"kind": "hard"} if k == 0 else {
            "kind": "soft",
            "teachers": teachers_by_k[k],
            "mode": mode,
            "k": k,
            "teacher_group": teachers_group,
            "temperature": float(temperature),
            "hard_weight": float(hard_weight),
            "noise_var": float(noise_var),
        }
        for seed in seeds:
            spec = TrainSpec(arch=arch, seed=seed, group=sweep_group(prefix, k), targets=targets, **train_settings)
            found = existing.get((sweep_group(prefix, k), seed))
            if found is not None:
                _check_same_spec(found, spec)
            plan.runs.append(PlannedRun(k, seed, spec, found.id if found else None, found.status if found else None))
    return plan


def _existing_runs(project: Project, prefix: str) -> dict[tuple[str, int], runs.Run]:
    """Runs of the sweep's groups by (group, seed): a finished one if there is one, else the newest."""
    found: dict[tuple[str, int], runs.Run] = {}
    for run in sorted(runs.list_runs(project, group_prefix=prefix + "-k"), key=lambda r: (r.created_at or "", r.id)):
        key = (run.group, run.seed)
        if key not in found or not found[key].finished:
            found[key] = run
    return found


def _check_same_spec(found: runs.Run, spec) -> None:
    """Refuse to count an existing run whose settings differ from the plan as one of this sweep's runs."""
    planned = spec.resolved().to_dict()
    differ = sorted(
        key for key in set(found.spec) | set(planned)
        if key != "device" and found.spec.get(key) != planned.get(key)
    )
    if differ:
        raise SweepError(
            f"run {found.id} (group {found.group}, seed {found.seed}) was made with other settings "
            f"({', '.join(differ)}); give this sweep another name with --group"
        )


def submit_sweep(project: Project, plan: SweepPlan) -> list[str]:
    """Queue every planned run that does not exist yet and re-queue interrupted ones (they continue from
    their last checkpoint); returns all run ids of the sweep in plan order.

    ``rsc sweep`` then trains exactly these ids with the worker loop (:func:`trainer.jobs.run_worker`).
    """
    from ..train import create_run  # here, so that reading results never loads the training code

    ids = []
    for run in plan.runs:
        if run.run_id is None:
            run.run_id = create_run(project, run.spec, status=runs.QUEUED)
            run.status = runs.QUEUED
        elif run.status in runs.STOPPED or (
            run.status in runs.ACTIVE and not runs.get_run(project, run.run_id).owner_alive()
        ):
            runs.requeue(project, run.run_id)
            run.status = runs.QUEUED
        ids.append(run.run_id)
    return ids


def sweep_table(project: Project, plan: SweepPlan, split: str = "test") -> list[dict]:
    """For each k: the students' mean/std of Sp, Se, Score over finished seeds, and the teachers' ensemble at k."""
    rows = []
    for k in plan.ks:
        group = sweep_group(plan.prefix, k)
        group_runs = runs.list_runs(project, group=group)
        done = [r for r in group_runs if r.finished]
        metrics = [r.metrics for r in done]
        row = {
            "k": k,
            "group": group,
            "n": len(done),
            "pending": len(group_runs) - len(done),
            "run_ids": [r.id for r in done],
            "seeds": [r.seed for r in done],
        }
        for key in ("sp", "se", "score"):
            row[key] = mean_std(m[key] for m in metrics) if metrics else (None, None)
        row["ensemble"] = None
        if k >= 1:
            try:
                teachers = select_teachers(project, plan.teachers_group, k, selection_for_mode(plan.mode))
                result = ensemble_score(project, teachers, split=split)
                row["ensemble"] = {
                    "sp": result["metrics"]["sp"],
                    "se": result["metrics"]["se"],
                    "score": result["metrics"]["score"],
                    "run_ids": result["run_ids"],
                }
            except (DistillError, ProjectError) as exc:
                row["ensemble_error"] = str(exc)
        rows.append(row)
    return rows


def format_sweep_table(rows: list[dict], plan: SweepPlan) -> str:
    def ms(pair) -> str:
        mean, std = pair
        return "-" if mean is None else f"{mean:6.2f} ± {std:4.2f}"

    lines = [
        f"teacher-count study: {plan.arch} students ({plan.mode}) from teachers {plan.teachers_group!r}",
        f"{'k':>3}  {'n':>2}  {'Sp':>13}  {'Se':>13}  {'Score':>13}  {'teachers++ Score':>16}  group",
    ]
    for row in rows:
        ens = row["ensemble"]
        ens_text = f"{ens['score']:6.2f}" if ens else ("-" if row["k"] == 0 else "n/a")
        pending = f"  ({row['pending']} not finished)" if row["pending"] else ""
        lines.append(
            f"{row['k']:>3}  {row['n']:>2}  {ms(row['sp']):>13}  {ms(row['se']):>13}  {ms(row['score']):>13}  "
            f"{ens_text:>16}  {row['group']}{pending}"
        )
    lines.append("k = 0: hard-label training of the student; teachers++: argmax of the mean logits of the same k teachers")
    return "\n".join(lines)
