"""The project's worker process, seen from the app: start one when jobs wait and none is alive, reap it
when it exits, and stop it when the user asks.

Training never runs in the app: a worker is a separate ``rsc worker --once`` process
(:func:`trainer.jobs.start_worker_process`) that outlives the window if the user leaves it running.
One worker per project at a time, so jobs on one GPU run one after another. What the worker does is
read back from the project through the model layer, like any other process's writes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

from PySide6.QtCore import QObject, QTimer, Signal

from trainer import runs
from trainer.jobs import start_worker_process, worker_pids

from ..model import ProjectModel

# While a worker or a run is active: how often the app looks whether its process is still there. A worker
# killed writes nothing to the project, so no poll of the project could notice it.
CHECK_MS = 500


class WorkerSupervisor(QObject):
    changed = Signal()  # a worker started or exited, or a run's process was found gone

    def __init__(self, model: ProjectModel, parent: QObject | None = None):
        super().__init__(parent)
        self.model = model
        self.process: subprocess.Popen | None = None  # the worker this app started, until it is reaped
        self._orphans: set[str] = set()  # active runs whose process is gone, as of the last look
        self._timer = QTimer(self)
        self._timer.setInterval(CHECK_MS)
        self._timer.timeout.connect(self._check)
        model.projectChanged.connect(lambda _project: self.release())  # a worker belongs to one project
        model.runsChanged.connect(lambda _ids: self.watch())

    def pids(self) -> list[int]:
        """Workers alive for the open project (this app's, one left running earlier, or `rsc worker`)."""
        if self.model.project is None:
            return []
        alive = set(worker_pids(self.model.project.path))
        if self.process is not None and self.process.poll() is None:
            alive.add(self.process.pid)  # started but not yet at its pid marker
        return sorted(alive)

    def queued(self) -> int:
        return sum(run.status == runs.QUEUED for run in self.model.runs())

    def ensure(self) -> bool:
        """Start a worker if jobs are queued and none is alive; True if one was started."""
        project = self.model.project
        if project is None or not self.queued() or self.pids():
            return False
        self.process = start_worker_process(project.path, once=True)
        self.watch()
        self.changed.emit()
        return True

    def stop(self) -> None:
        """Stop the project's work: running jobs are cancelled (each keeps its last checkpoint) and the
        workers asked to exit, so they take no further job; queued jobs stay queued."""
        project = self.model.project
        if project is None:
            return
        for run in self.model.runs():
            if run.status == runs.RUNNING:
                with contextlib.suppress(runs.RunError):
                    runs.cancel(project, run.id)
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)  # the worker finishes its batch, records the cancel, exits
        self.model.refresh()

    def orphans(self) -> set[str]:
        return {run.id for run in self.model.runs() if run.active and not run.owner_alive()}

    def watch(self) -> None:
        """Keep looking while there is something to look after; stop when nothing is active."""
        busy = self.process is not None or any(run.active for run in self.model.runs())
        if busy and not self._timer.isActive():
            self._timer.start()
        elif not busy:
            self._timer.stop()

    def _check(self) -> None:
        # A child that exited stays a zombie (and looks alive to a pid check) until it is waited for.
        if self.process is not None and self.process.poll() is not None:
            self.process = None
            self.model.refresh()  # its last writes, before deciding whether more work waits
            self.changed.emit()
            self.ensure()  # jobs queued while it was finishing its last one
        orphans = self.orphans()
        if orphans != self._orphans:
            self._orphans = orphans
            self.changed.emit()
        self.watch()

    def release(self) -> None:
        """Forget the worker without stopping it (the window closes, or another project opens, and it goes on)."""
        self._timer.stop()
        self.process = None
        self._orphans = set()
        self.watch()
