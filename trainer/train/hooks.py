"""Hooks: the loop's cross-cutting work (Lightning's callbacks): live progress, cancel polling, ETA.

The loop calls each hook by name (:meth:`Hooks.call`) at these points; a hook implements those it needs:

``on_fit_start(cycles)``           before the data loads
``on_features(done, total)``       while the features are computed
``on_resumed(state)``              a checkpoint was restored
``on_epoch_start(state)``          before an epoch's first batch
``on_batch_end(state, batch, batches)``
``on_epoch_end(state, entry)``     the epoch is scored; a hook may add to its row before it is stored
``on_epoch_saved(state, entry)``   the epoch's row and checkpoint are durable
``on_train_end(state)``            the last epoch is durable; the final model's outputs come next
``on_logits(done, total)``         the final model's logits on every cycle
``on_fit_end(metrics)``            the run is done and stored
"""

from __future__ import annotations

import time
from typing import Any, Callable

from .. import runs
from ..project import Project

# How often (seconds) the loop looks at the project for a cancel request and writes batch progress.
POLL_SECONDS = 1.0


class RunStopped(Exception):
    """Training stopped at the caller's request (cancel, should_stop); the last checkpoint is kept."""

    def __init__(self, run_id: str, epoch: int, status: str):
        super().__init__(f"run {run_id} stopped after epoch {epoch} ({status}); continue it with `rsc resume`")
        self.run_id, self.epoch, self.status = run_id, epoch, status


class Hook:
    """A hook that does nothing; subclasses override the points they need."""

    def on_fit_start(self, cycles: int) -> None: ...
    def on_features(self, done: int, total: int) -> None: ...
    def on_views(self, done: int, total: int) -> None: ...
    def on_resumed(self, state) -> None: ...
    def on_epoch_start(self, state) -> None: ...
    def on_batch_end(self, state, batch: int, batches: int) -> None: ...
    def on_epoch_end(self, state, entry: dict) -> None: ...
    def on_epoch_saved(self, state, entry: dict) -> None: ...
    def on_train_end(self, state) -> None: ...
    def on_logits(self, done: int, total: int) -> None: ...
    def on_fit_end(self, metrics: dict) -> None: ...


class Hooks:
    def __init__(self, *hooks: Hook):
        self.hooks = hooks

    def call(self, point: str, *args) -> None:
        for hook in self.hooks:
            getattr(hook, point)(*args)


class ProgressHook(Hook):
    """Writes the run's live phase to ``runs.progress`` for viewers (throttled) and passes every event to
    ``progress(event)``: dicts with a ``phase`` (features, views, resumed, batch, epoch, logits, done) and the run id."""

    def __init__(self, project: Project, run_id: str, epochs: int, progress: Callable[[dict], Any] | None):
        self.project, self.run_id, self.epochs, self.progress = project, run_id, epochs, progress
        self.status: dict = {}  # the last progress written, kept when the run is cancelled
        self._last_write = 0.0

    def emit(self, event: dict) -> None:
        if self.progress is not None:
            self.progress(dict(event, run_id=self.run_id))

    def write(self, **info) -> None:
        self._last_write = time.monotonic()
        self.status.update(info)
        runs.write_progress(self.project, self.run_id, self.status)

    def _due(self) -> bool:
        return time.monotonic() - self._last_write > POLL_SECONDS

    def warn(self, message: str) -> None:
        """Something the user must hear about although the run goes on (kept in the run's progress)."""
        self.status.setdefault("warnings", []).append(message)
        self.emit({"phase": "warning", "message": message})

    def on_fit_start(self, cycles: int) -> None:
        self.write(phase="features", done=0, total=cycles)

    def on_features(self, done: int, total: int) -> None:
        if self._due():
            self.write(phase="features", done=done, total=total)
        self.emit({"phase": "features", "done": done, "total": total})

    def on_views(self, done: int, total: int) -> None:
        if self.status.get("phase") != "views" or self._due():
            self.write(phase="views", done=done, total=total)
        self.emit({"phase": "views", "done": done, "total": total})

    def on_resumed(self, state) -> None:
        self.emit({"phase": "resumed", "epoch": state.epoch, "epochs": self.epochs})

    def on_batch_end(self, state, batch: int, batches: int) -> None:
        epoch = state.epoch + 1
        if self._due():
            self.write(phase="train", epoch=epoch, epochs=self.epochs, batch=batch, batches=batches)
        self.emit({"phase": "batch", "epoch": epoch, "epochs": self.epochs, "batch": batch, "batches": batches})

    def on_epoch_saved(self, state, entry: dict) -> None:
        self.write(phase="train", epoch=state.epoch, epochs=self.epochs, eta_s=entry["eta_s"])
        self.emit(dict(entry, phase="epoch"))

    def on_logits(self, done: int, total: int) -> None:
        if done == 0:
            self.write(phase="logits", done=done, total=total)
        self.emit({"phase": "logits", "done": done, "total": total})

    def on_fit_end(self, metrics: dict) -> None:
        self.emit({"phase": "done", "metrics": metrics})


class CancelHook(Hook):
    """Stops the run (:class:`RunStopped`) when ``should_stop()`` says so, asked after every batch, or when
    its status in the project becomes cancelling, looked at before each epoch, about once a second and
    after the last epoch (the runner looks once more in the transaction that would finish the run)."""

    def __init__(self, project: Project, run_id: str, should_stop: Callable[[], bool] | None):
        self.project, self.run_id, self.should_stop = project, run_id, should_stop
        self._last_poll = 0.0

    def check(self, state, force: bool = False) -> None:
        if self.should_stop is not None and self.should_stop():
            raise RunStopped(self.run_id, state.epoch, runs.CANCELLED)
        stamp = time.monotonic()
        if force or stamp - self._last_poll > POLL_SECONDS:
            self._last_poll = stamp
            if runs.status_of(self.project, self.run_id) in (runs.CANCELLING, runs.CANCELLED):
                raise RunStopped(self.run_id, state.epoch, runs.CANCELLED)

    def on_epoch_start(self, state) -> None:
        self.check(state, force=True)

    def on_batch_end(self, state, batch: int, batches: int) -> None:
        self.check(state)

    def on_train_end(self, state) -> None:
        self.check(state, force=True)


class EtaHook(Hook):
    """Adds the epoch's wall time (``seconds``) and the expected time to the end (``eta_s``) to its row,
    from the mean epoch time of this session (a resumed run does not count the epochs before it)."""

    def __init__(self, epochs: int):
        self.epochs = epochs
        self._session_start: float | None = None
        self._session_epochs = 0
        self._epoch_start = 0.0

    def on_epoch_start(self, state) -> None:
        self._epoch_start = time.monotonic()
        if self._session_start is None:
            self._session_start = self._epoch_start

    def on_epoch_end(self, state, entry: dict) -> None:
        stamp = time.monotonic()
        self._session_epochs += 1
        eta = (stamp - self._session_start) / self._session_epochs * (self.epochs - state.epoch)
        entry["seconds"] = round(stamp - self._epoch_start, 3)
        entry["eta_s"] = round(eta, 1)
