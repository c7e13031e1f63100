"""What the Train view does to runs: queue, cancel, resume, remove, run again. Each is a call into the
core (``trainer.jobs``, ``trainer.runs``) on the model's project, then a look by the model so every view
hears of it at once; anything the core refuses becomes one clear message, and the app goes on."""

from __future__ import annotations

from typing import Callable, Sequence

from PySide6.QtCore import QObject, Signal

from trainer import runs
from trainer.jobs import submit, submit_collab, submit_collab_again
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
        ids, text = self._submit_specs(specs)
        self.message.emit(text)
        self._started(ids)
        return ids

    def _submit_specs(self, specs: Sequence[TrainSpec]) -> tuple[list[str], str]:
        """The runs stored and the line that says so; raises if the first is refused."""
        ids = []
        try:
            for spec in specs:
                ids.append(submit(self.model.project, spec))
        except ProjectError as exc:
            if not ids:
                raise
            return ids, f"queued {len(ids)} of {len(specs)} runs; then: {exc}"
        return ids, f"queued {len(ids)} run{'s' if len(ids) != 1 else ''}"

    def queue_collab(self, jobs) -> list[str]:
        """Queue collaborative jobs (``submit_collab``: each seed's models stored together, for one worker
        to train in lockstep)."""
        try:
            ids = submit_collab(self.model.project, jobs)
        except ProjectError:
            self.model.refresh()  # jobs stored before a refused one stay queued, as they do for the CLI
            raise
        self.message.emit(_collab_line(len(ids), len(jobs.jobs)))
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
        """New runs with the same stored settings (same group and seed; for a student, the same teachers).
        A model of a collaborative job is run again with its whole job, once however many of its models
        are selected: its models only train together."""
        project = self.model.project
        if project is None:
            return []
        chosen, specs = [], []
        for run_id in run_ids:
            try:
                run = runs.get_run(project, run_id)
                if run.kind != runs.LOCKSTEP_KIND:
                    specs.append(TrainSpec.from_dict(run.spec))
                chosen.append(run)
            except ProjectError as exc:
                self.message.emit(str(exc))
                return []
        ids, parts = self._collab_again([r for r in chosen if r.kind == runs.LOCKSTEP_KIND])
        if specs:
            try:
                new, text = self._submit_specs(specs)
                ids += new
                parts.append(text)
            except ProjectError as exc:
                parts.append(f"not queued: {exc}")
        self.message.emit("; ".join(parts))
        self._started(ids)
        return ids

    def _collab_again(self, chosen: Sequence[runs.Run]) -> tuple[list[str], list[str]]:
        ids, refused, jobs = [], [], 0
        covered: set[str] = set()  # models whose job is queued again already, as a peer of an earlier one
        for run in chosen:
            if run.id in covered:
                continue
            covered |= {run.id, *((run.spec.get("targets") or {}).get("peers") or [])}
            try:
                ids += submit_collab_again(self.model.project, run.id)
                jobs += 1
            except ProjectError as exc:
                refused.append(f"not queued: {exc}")
        return ids, ([_collab_line(len(ids), jobs)] if jobs else []) + refused


def _collab_line(n_runs: int, n_jobs: int) -> str:
    return f"queued {n_runs} run{'s' if n_runs != 1 else ''} ({n_jobs} collaborative job{'s' if n_jobs != 1 else ''})"
