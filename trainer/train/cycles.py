"""The cycles a run trains and is scored on: its group's cycle set (:mod:`trainer.runs.cycle_sets`).

The first run of a group fixes the set from the project's live train and test cycles with audio; every
later run of the group reuses it, and a student group without one takes the set its teachers share, so
teachers and students are scored on the same cycles. A run trains on its set whatever was imported
since, and a set whose cycles were deleted, moved, relabelled, re-split or whose audio changed is
refused by name: a run never trains or is scored on other cycles than its set.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import runs
from ..project import Project
from .provenance import data_fingerprint
from .spec import TrainError, TrainSpec


@dataclass
class RunCycles:
    set_id: int | None  # None: a new set, stored with the run (keep_cycles)
    members: list[dict]
    train: list[dict]  # the project's rows, in training order
    test: list[dict]
    fingerprint: str


def current_cycles(live: dict[int, dict]) -> tuple[list[dict], list[dict]]:
    """Live train and test cycles whose audio is present, in the project's stable order."""
    usable = [r for r in live.values() if not r["deleted"] and r["audio_status"] == "ok"]
    return [r for r in usable if r["split"] == "train"], [r for r in usable if r["split"] == "test"]


def cycles_for(project: Project, spec: TrainSpec) -> RunCycles:
    """The cycles a new run of ``spec.group`` gets: the group's set, its teachers' set, or the live cycles."""
    live = runs.live_cycles(project)
    set_id, teachers = runs.group_cycle_set(project, spec.group), False
    if set_id is None and spec.kind == "student":
        set_id, teachers = runs.shared_cycle_set(project, spec.targets["teachers"]), True
    if set_id is None:
        train, test = current_cycles(live)
        return RunCycles(None, runs.members_of(train + test), train, test, data_fingerprint(project, train, test))
    cycle_set = runs.read_cycle_set(project, set_id, live)
    what = f"the cycle set of {'the teachers of this student' if teachers else 'group'} {cycle_set.group!r}"
    return _verified(cycle_set, what, teachers)


def keep_cycles(project: Project, run_id: str, group: str, cycles: RunCycles) -> int:
    """Point the run at its set, storing a new one first; returns the set's id."""
    with project.transaction():
        set_id = cycles.set_id
        if set_id is None:
            set_id = runs.fix_cycle_set(project, group, cycles.members, cycles.fingerprint)
        runs.assign_cycle_set(project, run_id, set_id)
    cycles.set_id = set_id
    return set_id


def run_cycles(project: Project, run: runs.Run, spec: TrainSpec) -> RunCycles:
    """A stored run's cycles, checked against the project; a run made before cycle sets gets one now."""
    set_id = runs.run_cycle_set(project, run.id)
    if set_id is None:
        cycles = cycles_for(project, spec)
        keep_cycles(project, run.id, spec.group, cycles)
        return cycles
    return _verified(runs.read_cycle_set(project, set_id), f"run {run.id}'s cycle set")


def _verified(cycle_set: runs.CycleSet, what: str, teachers: bool = False) -> RunCycles:
    changes = cycle_set.changes()
    if changes:
        todo = "Restore or relocate the audio (`rsc check` names each file), or start" if changes.audio else "Start"
        retrain = " (a student group takes its teachers' set: train new teachers first)" if teachers else ""
        raise TrainError(
            f"{what}, fixed {cycle_set.created_at}, changed since: {changes.describe()}. A run is never trained or "
            f"scored on other cycles than its set. {todo} a new group (--group NEW) to train on the project's cycles "
            f"as they are now{retrain}"
        )
    return RunCycles(cycle_set.id, cycle_set.members, cycle_set.rows("train"), cycle_set.rows("test"),
                     cycle_set.fingerprint)
