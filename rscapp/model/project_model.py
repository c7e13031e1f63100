"""The open project as a QObject that says what changed (napari's evented models, Sonic Visualiser's
``modelChanged``): views listen to it, commands edit through it, and nobody re-reads on a hunch.

Writes made here (Listen's undo commands, "Locate audio file...") are announced as soon as their
transaction commits. Writes made elsewhere (the worker, the CLI, a pool thread's own connection) are
noticed by polling ``PRAGMA data_version`` every :data:`POLL_MS`: that pragma is all a poll costs while
nothing changes. Either way :class:`~rscapp.model.changes.ChangeTracker` finds exactly which cycles,
recordings and runs changed, and the narrowest signal goes out. This is the one place in the app that polls.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from PySide6.QtCore import QObject, QTimer, Signal

from trainer.labelfiles import import_labels
from trainer.project import Project
from trainer.project.queries import (
    adjust_cycle_counts, audio_counts, cycle_counts_by_recording, sum_cycle_counts, summarise_counts,
)
from trainer.runs import Run

from .changes import Changes, ChangeTracker

POLL_MS = 250  # outside writes show within a quarter of a second; a quiet poll is one pragma


class ProjectModel(QObject):
    projectChanged = Signal(object)  # the Project just opened, or None once closed
    recordingsChanged = Signal(object)  # ids of recordings whose own row changed, came or went
    cyclesChanged = Signal(object, object)  # cycle ids, ids of the recordings they belong to
    runsChanged = Signal(object)  # ids of runs whose status, epoch, progress or metrics changed

    def __init__(self, parent: QObject | None = None, poll_ms: int = POLL_MS):
        super().__init__(parent)
        self.project: Project | None = None
        self._tracker: ChangeTracker | None = None
        self._counts: dict | None = None
        self._cycle_parts: dict | None = None  # live cycles per recording and class, patched per change
        self._cycle_counts: dict | None = None  # their sum per split and class, patched likewise
        self._audio: dict[str, int] | None = None
        self._depth = 0
        self._touched_recordings = False
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.poll)

    # -- the open project ------------------------------------------------------------------------
    def set_project(self, project: Project | None) -> None:
        """Show another project (or none). The caller opened it and closes it after this call with None."""
        self._timer.stop()
        self.project = project
        self._counts = self._cycle_parts = self._cycle_counts = self._audio = None
        self._tracker = ChangeTracker(project) if project is not None else None
        if project is not None:
            self._timer.start()
        self.projectChanged.emit(project)

    def counts(self) -> dict:
        """Cycles per split and class and audio statuses (``trainer.project.queries.library_counts``),
        made once per change however many views ask. After a change only the recordings it touched are
        counted again, so a relabel in a 7,000-cycle project costs an index lookup, not a scan."""
        if self.project is None:
            return {}
        if self._counts is None:
            if self._cycle_parts is None:
                self._cycle_parts = cycle_counts_by_recording(self.project)
                self._cycle_counts = sum_cycle_counts(self._cycle_parts.values())
            if self._audio is None:
                self._audio = audio_counts(self.project)
            self._counts = summarise_counts(self._cycle_counts, self._audio)
        return self._counts

    def _recount(self, changes: Changes) -> None:
        touched = set(changes.cycle_recording_ids) | set(changes.recording_ids)
        if touched:
            self._counts = None
        if touched and self._cycle_parts is not None:
            new = cycle_counts_by_recording(self.project, touched)
            old = [self._cycle_parts.pop(rid) for rid in touched if rid in self._cycle_parts]
            self._cycle_parts.update(new)
            self._cycle_counts = adjust_cycle_counts(self._cycle_counts, old, new.values())
        if changes.recording_ids:
            self._audio = None

    def runs(self) -> list[Run]:
        """The project's training runs (``trainer.runs.list_runs``) as of the last look."""
        return self._tracker.runs if self._tracker is not None else []

    # -- noticing changes ------------------------------------------------------------------------
    def poll(self) -> Changes:
        """The timer's tick: announce what other connections wrote since the last tick."""
        if self._tracker is None or not self._tracker.outside_write():
            return Changes()
        return self._announce(self._tracker.scan())

    def refresh(self) -> Changes:
        """Look now, without waiting for the timer (after a background task wrote on its own connection)."""
        if self._tracker is None:
            return Changes()
        self._tracker.outside_write()  # what the scan finds now needs no second look at the next tick
        return self._announce(self._tracker.scan())

    def _announce(self, changes: Changes) -> Changes:
        self._recount(changes)
        if changes.recording_ids:
            self.recordingsChanged.emit(changes.recording_ids)
        if changes.cycle_ids:
            self.cyclesChanged.emit(changes.cycle_ids, changes.cycle_recording_ids)
        if changes.run_ids:
            self.runsChanged.emit(changes.run_ids)
        return changes

    # -- editing ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self, recordings: bool = False) -> Iterator[Project]:
        """Edits whose changes are announced together, once the outermost batch ends.

        ``recordings``: they touch recordings' own rows (audio path or status), not only cycles.
        """
        if self.project is None:
            raise RuntimeError("no project open")
        self._touched_recordings |= recordings
        self._depth += 1
        try:
            yield self.project
        finally:
            self._depth -= 1
            if not self._depth:
                touched, self._touched_recordings = self._touched_recordings, False
                if self._tracker is not None:
                    self._announce(self._tracker.scan(recordings=touched, runs=False))

    @contextlib.contextmanager
    def transaction(self, recordings: bool = False) -> Iterator[Project]:
        """One atomic write (``Project.transaction``) in one batch: all of it or nothing, announced once."""
        with self.batch(recordings) as project, project.transaction():
            yield project

    def add_cycle(self, recording_id: int, start: float, end: float, crackle: int = 0, wheeze: int = 0,
                  **options) -> int:
        with self.batch() as project:
            return project.add_cycle(recording_id, start, end, crackle, wheeze, **options)

    def update_cycle(self, cycle_id: int, **changes) -> dict:
        with self.batch() as project:
            return project.update_cycle(cycle_id, **changes)

    def delete_cycle(self, cycle_id: int, reason: str | None = None) -> None:
        with self.batch() as project:
            project.delete_cycle(cycle_id, reason=reason)

    def restore_cycle(self, cycle_id: int) -> None:
        with self.batch() as project:
            project.restore_cycle(cycle_id)

    def split_cycle(self, cycle_id: int, at: float) -> tuple[int, int]:
        with self.batch() as project:
            return project.split_cycle(cycle_id, at)

    def import_labels(self, path, recording_id: int | None, fmt: str | None, mode: str) -> list:
        """A label file applied to the project (``trainer.labelfiles.import_labels``), in one transaction."""
        with self.transaction() as project:
            return import_labels(project, path, recording_id, fmt, mode)

    def relocate_audio(self, recording_id: int, path) -> dict:
        # Not inside a transaction of ours: the project hashes the file before its own short write.
        with self.batch(recordings=True) as project:
            return project.relocate_audio(recording_id, path)
