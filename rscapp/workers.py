"""Background tasks for the GUI: run a function off the GUI thread with progress, cancel and errors.

Usage (any view)::

    from rscapp.workers import Task, Cancelled, start

    def compute(path, progress):           # runs on a pool thread; must not touch widgets
        for i in range(n):
            progress(i, n, "reading")        # raises Cancelled once task.cancel() was called
            ...
        return result

    task = Task(compute, path)              # `progress=` is passed as a keyword argument
    task.signals.progress.connect(lambda done, total, text: ...)
    task.signals.finished.connect(on_result)       # result of compute, on the GUI thread
    task.signals.failed.connect(on_error)          # (exception, traceback text)
    task.signals.cancelled.connect(...)            # compute raised Cancelled
    task.signals.done.connect(...)                 # always last, whatever happened
    start(task)                                    # QThreadPool.globalInstance()
    ...
    task.cancel()                                  # cooperative: the next progress() call raises Cancelled

Rules that keep this safe:

- Signals are emitted on the pool thread and delivered to receivers on the GUI thread (queued
  connections), so handlers may update widgets.
- A task must not use the GUI's ``Project`` object: SQLite connections are not to be shared between
  threads. Open a second ``Project(path)`` inside the function (WAL mode lets both work at once) and
  close it before returning. Read-only numpy work (spectrograms) needs no project at all.
- Cancel is cooperative. Long functions call ``progress`` (or check ``task.is_cancelled``) often; the
  trainer importers commit one recording per transaction, so raising Cancelled from ``progress``
  loses nothing already imported.
- ``start`` keeps a reference to the task until ``done``, so fire-and-forget is fine; for
  "latest request wins" (e.g. a spectrogram for the recording just opened) cancel the previous task
  and ignore its late ``finished`` by comparing with the task you hold (``sender`` is not needed:
  connect with a lambda that captures the task).
"""

from __future__ import annotations

import inspect
import logging
import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from trainer.interrupts import Cancelled as _CoreCancelled

log = logging.getLogger(__name__)


class Cancelled(_CoreCancelled):
    """Raised inside a task (by its progress callback) once the user asked to cancel it.

    A subclass of the core's, so that an import records a cancel as cancelled, not failed.
    """


class TaskSignals(QObject):
    progress = Signal(int, int, str)  # done, total (0 = unknown), message
    finished = Signal(object)  # the function's return value
    failed = Signal(object, str)  # the exception and its formatted traceback
    cancelled = Signal()
    done = Signal()  # emitted last in every case


class Task(QRunnable):
    """One function call on a pool thread. ``progress`` is passed to the function as a keyword
    argument unless ``progress_arg=None`` (then poll :attr:`is_cancelled` or call :meth:`report`)."""

    def __init__(self, fn: Callable[..., Any], *args, progress_arg: str | None = "progress", name: str = "", **kwargs):
        super().__init__()
        self.setAutoDelete(False)  # Python owns the object; `start` keeps it alive until done
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.progress_arg = progress_arg
        self.name = name or getattr(fn, "__name__", "task")
        self.signals = TaskSignals()
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.state = "pending"  # pending, running, finished, failed, cancelled

    # -- control (GUI thread) ------------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def is_done(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the function returned (for tests and shutdown; the GUI should use signals)."""
        return self._finished.wait(timeout)

    # -- inside the task (pool thread) -----------------------------------------------------------
    def report(self, *args, **kwargs) -> None:
        """The progress callback. Accepts ``(done, total)``, ``(done, total, message)``, ``(message)``
        or ``(fraction)``; raises :class:`Cancelled` when cancel was requested."""
        if self._cancel.is_set():
            raise Cancelled(f"{self.name} cancelled")
        done, total, message = _normalise(args, kwargs)
        self._emit(self.signals.progress, done, total, message)

    @staticmethod
    def _emit(signal, *args) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the receiver side was torn down (application exit): nobody to tell
            pass

    def run(self) -> None:  # called by QThreadPool
        self.state = "running"
        kwargs = dict(self.kwargs)
        if self.progress_arg:
            kwargs[self.progress_arg] = self.report
        try:
            if self._cancel.is_set():
                raise Cancelled(f"{self.name} cancelled before it started")
            self.result = self.fn(*self.args, **kwargs)
        except Cancelled:
            self.state = "cancelled"
            self._finished.set()
            self._emit(self.signals.cancelled)
        except BaseException as exc:  # noqa: BLE001 - everything must reach the GUI, not vanish in a thread
            self.state = "failed"
            self.error = exc
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            log.warning("task %s failed: %s", self.name, text)
            self._finished.set()
            self._emit(self.signals.failed, exc, text)
        else:
            self.state = "finished"
            self._finished.set()
            self._emit(self.signals.finished, self.result)
        finally:
            self._emit(self.signals.done)


def _normalise(args: tuple, kwargs: dict) -> tuple[int, int, str]:
    message = str(kwargs.get("message", "") or "")
    done = kwargs.get("done", 0)
    total = kwargs.get("total", 0)
    numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    texts = [a for a in args if isinstance(a, str)]
    if texts and not message:
        message = texts[0]
    if len(numbers) >= 2:
        done, total = numbers[0], numbers[1]
    elif len(numbers) == 1:
        value = numbers[0]
        if isinstance(value, float) and 0.0 <= value <= 1.0:
            done, total = int(round(value * 1000)), 1000
        else:
            done, total = int(value), 0
    return int(done), int(total), message


_running: set[Task] = set()


def start(task: Task, pool: QThreadPool | None = None) -> Task:
    """Queue a task on the global pool (or ``pool``) and keep it alive until it is done."""
    _running.add(task)
    task.signals.done.connect(lambda: _running.discard(task))
    (pool or QThreadPool.globalInstance()).start(task)
    return task


def run_task(fn: Callable[..., Any], *args, **kwargs) -> Task:
    """Shorthand: ``start(Task(fn, *args, **kwargs))``. Connect to ``task.signals`` right after;
    signals cannot arrive before control returns to the event loop."""
    return start(Task(fn, *args, **kwargs))


def running_tasks() -> list[Task]:
    return list(_running)


def cancel_all(wait: float = 5.0) -> None:
    """Cancel every running task and wait a little for them (on application exit)."""
    for task in list(_running):
        task.cancel()
    for task in list(_running):
        task.wait(wait)


def accepts_progress(fn: Callable[..., Any]) -> bool:
    try:
        return "progress" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
