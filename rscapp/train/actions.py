"""What the Train view does to runs: queue, cancel, resume, remove, run again. Each is a call into the
core (``trainer.jobs``, ``trainer.runs``) on the model's project, then a look by the model so every view
hears of it at once; anything the core refuses becomes one clear message, and the app goes on."""

from __future__ import annotations

from typing import Callable, Sequence

from PySide6.QtCore import QObject, Signal

from trainer import runs
from trainer.jobs import submit
from trainer.project import ProjectError
from trainer.results import submit_sweep
from trainer.train import TrainSpec

from ..model import ProjectModel
from .queue_table import INTERRUPTED, status_of
from .worker import WorkerSupervisor


def can_cancel(run: runs.Run) -> bool:
    return run.status in (runs.QUEUED, runs.RUNNING)


def can_resume(run: runs.Run) -> bool:
    return run.status in runs.STOPPED or status_of(run) == INTERRUPTED


def can_remove(run: runs.Run) -> bool:
    return not (run.active and run.owner_alive())


class QueueActions(QObject):
    message = Signal(str)  # what was done, or why not, in one line

    def __init__(self, model: ProjectModel, worker: WorkerSupervisor, parent: QObject | None = None):
        super().__init__(parent)
        self.model = model
        self.worker = worker

    def _each(self, run_ids: Sequence[str], act: Callable[[str], object], done: str) -> list[str]:
        """``act`` on each run; the ones the core refuses are named in the message, the rest go ahead."""
        if self.model.project is None:
            return []
        ok, refused = [], []
        for run_id in run_ids:
            try:
                act(run_id)
                ok.append(run_id)
            except ProjectError as exc:
                refused.append(str(exc))
        self.model.refresh()
        text = f"{done} {len(ok)} run{'s' if len(ok) != 1 else ''}" if ok else ""
        self.message.emit("; ".join([t for t in [text, *refused] if t]))
        return ok

    def queue_specs(self, specs: Sequence[TrainSpec]) -> list[str]:
        """Store the jobs and make sure a worker takes them. The core checks each before storing it; if it
        refuses the first, nothing is stored and its ProjectError goes to the caller (the dialog shows it)."""
        project = self.model.project
        ids = []
        try:
            for spec in specs:
                ids.append(submit(project, spec))
        except ProjectError as exc:
            if not ids:
                raise
            self.message.emit(f"queued {len(ids)} of {len(specs)} runs; then: {exc}")
        else:
            self.message.emit(f"queued {len(ids)} run{'s' if len(ids) != 1 else ''}")
        self._started(ids)
        return ids

    def queue_sweep(self, plan) -> list[str]:
        """Queue a sweep's new runs and continue its stopped ones (``submit_sweep``, as ``rsc sweep``)."""
        try:
            ids = submit_sweep(self.model.project, plan)
        except ProjectError:
            self.model.refresh()  # runs queued before the refusal stay, as they do for `rsc sweep`
            raise
        self.message.emit(f"sweep {plan.prefix}: {len(ids)} runs")
        self._started(ids)
        return ids

    def _started(self, ids: list[str]) -> None:
        self.model.refresh()
        if ids:
            self.worker.ensure()

    def cancel(self, run_ids: Sequence[str]) -> list[str]:
        return self._each(run_ids, lambda run_id: runs.cancel(self.model.project, run_id), "cancelling")

    def resume(self, run_ids: Sequence[str]) -> list[str]:
        ok = self._each(run_ids, lambda run_id: runs.requeue(self.model.project, run_id), "resuming")
        if ok:
            self.worker.ensure()
        return ok

    def remove(self, run_ids: Sequence[str]) -> list[str]:
        return self._each(run_ids, lambda run_id: runs.remove_run(self.model.project, run_id), "removed")

    def run_again(self, run_ids: Sequence[str]) -> list[str]:
        """New runs with the same stored settings (same group and seed; for a student, the same teachers)."""
        project = self.model.project
        if project is None:
            return []
        specs = []
        for run_id in run_ids:
            try:
                specs.append(TrainSpec.from_dict(runs.get_run(project, run_id).spec))
            except ProjectError as exc:
                self.message.emit(str(exc))
                return []
        try:
            return self.queue_specs(specs)
        except ProjectError as exc:
            self.message.emit(f"not queued: {exc}")
            return []
