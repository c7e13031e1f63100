"""What changed in a project since we last looked: the markers the app keeps, and the scans that compare them.

Every write to a cycle leaves a ``cycle_edits`` row in the same transaction (the project's rule), so the
edits after the newest one seen name exactly the cycles and recordings that changed. Recordings have no
history: their rows are compared with a snapshot (a millisecond or two for thousands). Runs are compared
through ``trainer.runs.runs_version``, a one-row summary, and only listed again when it moved. No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.project import Project
from trainer.project.queries import changed_recordings, data_version, edits_since, last_edit_id, recordings_snapshot
from trainer.runs import Run, list_runs, runs_version


@dataclass
class Changes:
    """Ids of what changed; empty lists: nothing of that kind."""

    cycle_ids: list[int] = field(default_factory=list)
    cycle_recording_ids: list[int] = field(default_factory=list)  # recordings whose cycles changed
    recording_ids: list[int] = field(default_factory=list)  # recordings whose own row changed, came or went
    run_ids: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.cycle_ids or self.recording_ids or self.run_ids)


def _run_states(runs: list[Run]) -> dict[str, tuple]:
    return {run.id: (run.status, run.epoch, run.finished_at, run.error, repr(run.progress), repr(run.metrics))
            for run in runs}


class ChangeTracker:
    """The markers of one open project, and the scans that move them forward."""

    def __init__(self, project: Project):
        self.project = project
        self.version = data_version(project)
        self.edit_id = last_edit_id(project)
        self.recordings = recordings_snapshot(project)
        self.runs_version = runs_version(project)
        self.runs: list[Run] = list_runs(project)
        self._run_states = _run_states(self.runs)

    def outside_write(self) -> bool:
        """Whether another connection (a process, or a pool thread's own connection) committed since the
        last call: one pragma, nothing else."""
        version = data_version(self.project)
        if version == self.version:
            return False
        self.version = version
        return True

    def scan(self, cycles: bool = True, recordings: bool = True, runs: bool = True) -> Changes:
        changes = Changes()
        if cycles:
            self.edit_id, changes.cycle_ids, changes.cycle_recording_ids = edits_since(self.project, self.edit_id)
        if recordings:
            snapshot = recordings_snapshot(self.project)
            changes.recording_ids = changed_recordings(self.recordings, snapshot)
            self.recordings = snapshot
        if runs:
            version = runs_version(self.project)
            if version != self.runs_version:
                self.runs_version, self.runs = version, list_runs(self.project)
                before, self._run_states = self._run_states, _run_states(self.runs)
                changes.run_ids = sorted(key for key in before.keys() | self._run_states.keys()
                                         if before.get(key) != self._run_states.get(key))
        return changes
