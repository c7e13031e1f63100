"""Undoable cycle edits (QUndoCommand) that write through the project model at once.

Every redo and undo is one transaction of the :class:`~rscapp.model.ProjectModel`, made of
:class:`trainer.project.Project` edits that each write their ``cycle_edits`` history row, so the project
on disk always matches what the screen shows and an undo is itself recorded ("restore", "update" back,
...), never a silent rewind. The model announces each change; a command never touches a view.
Cycles are never removed: undoing an add soft-deletes the cycle and redoing it restores the same row,
so later commands on the stack that name the cycle's id stay valid.

The first application happens in :meth:`CycleCommand.execute`, before the command is pushed, so a
refused edit (an overlap, say) raises to the caller and never lands on the stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from PySide6.QtGui import QUndoCommand

from trainer.project import ProjectError
from trainer.vocab import LABELS

from ..model import ProjectModel

ReportError = Callable[[str], None]


class CycleCommand(QUndoCommand):
    def __init__(self, model: ProjectModel, recording_id: int, text: str, report: ReportError | None = None):
        super().__init__(text)
        self.model = model
        self.recording_id = recording_id
        self._report = report
        self._pushed = False

    # -- to implement -------------------------------------------------------------------------------
    def apply(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def revert(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def recordings(self) -> Sequence[int]:
        """The recordings this command changes (the view shows the first after an undo or redo elsewhere)."""
        return (self.recording_id,)

    # -- plumbing ---------------------------------------------------------------------------------
    def execute(self) -> None:
        """First application; raises ProjectError (or LabelError) without touching the stack."""
        with self.model.transaction():
            self.apply()

    def redo(self) -> None:
        if not self._pushed:
            self._pushed = True  # QUndoStack.push calls redo; execute() already did the work
            return
        self._guarded(self.apply, "redo")

    def undo(self) -> None:
        self._guarded(self.revert, "undo")

    def _guarded(self, step, what: str) -> None:
        try:
            with self.model.transaction():
                step()
        except ProjectError as exc:
            # Only possible when something outside this stack edited the same cycles; drop the command
            # rather than leave the stack pointing at a state the project no longer has.
            self.setObsolete(True)
            if self._report:
                self._report(f"Cannot {what} '{self.text()}': {exc}")


class Relabel(CycleCommand):
    def __init__(self, model, cycle_id: int, label: int, report=None):
        row = model.project.cycle(cycle_id)
        self.cycle_id = cycle_id
        self.before = int(row["label"])
        self.after = int(label)
        super().__init__(
            model, row["recording_id"], f"Relabel cycle {cycle_id} {LABELS[self.before]} \u2192 {LABELS[self.after]}", report
        )

    def apply(self):
        self.model.update_cycle(self.cycle_id, label=self.after)

    def revert(self):
        self.model.update_cycle(self.cycle_id, label=self.before, reason="undo")


class MoveBoundary(CycleCommand):
    def __init__(self, model, cycle_id: int, start: float, end: float, report=None):
        row = model.project.cycle(cycle_id)
        self.cycle_id = cycle_id
        self.before = (float(row["start"]), float(row["end"]))
        self.after = (float(start), float(end))
        which = "start" if self.after[1] == self.before[1] else "end" if self.after[0] == self.before[0] else "span"
        super().__init__(model, row["recording_id"], f"Move {which} of cycle {cycle_id}", report)

    def apply(self):
        self.model.update_cycle(self.cycle_id, start=self.after[0], end=self.after[1])

    def revert(self):
        self.model.update_cycle(self.cycle_id, start=self.before[0], end=self.before[1], reason="undo")


class AddCycle(CycleCommand):
    def __init__(self, model, recording_id: int, start: float, end: float, label: int, report=None):
        super().__init__(model, recording_id, f"Add cycle {start:.3f}-{end:.3f} s", report)
        self.span = (float(start), float(end))
        self.label = int(label)
        self.cycle_id: int | None = None

    def apply(self):
        if self.cycle_id is None:
            crackle, wheeze = self.label & 1, (self.label >> 1) & 1
            self.cycle_id = self.model.add_cycle(self.recording_id, *self.span, crackle, wheeze, origin="user")
        else:
            self.model.restore_cycle(self.cycle_id)

    def revert(self):
        self.model.delete_cycle(self.cycle_id, reason="undo add")


class SplitCycle(CycleCommand):
    def __init__(self, model, cycle_id: int, at: float, report=None):
        row = model.project.cycle(cycle_id)
        super().__init__(model, row["recording_id"], f"Split cycle {cycle_id} at {at:.3f} s", report)
        self.cycle_id = cycle_id
        self.at = float(at)
        self.end = float(row["end"])
        self.right_id: int | None = None

    def apply(self):
        if self.right_id is None:
            _, self.right_id = self.model.split_cycle(self.cycle_id, self.at)
        else:
            self.model.update_cycle(self.cycle_id, end=self.at, reason="redo split")
            self.model.restore_cycle(self.right_id)

    def revert(self):
        self.model.delete_cycle(self.right_id, reason="undo split")
        self.model.update_cycle(self.cycle_id, end=self.end, reason="undo split")


class DeleteCycle(CycleCommand):
    def __init__(self, model, cycle_id: int, report=None):
        row = model.project.cycle(cycle_id)
        super().__init__(model, row["recording_id"], f"Delete cycle {cycle_id}", report)
        self.cycle_id = cycle_id

    def apply(self):
        self.model.delete_cycle(self.cycle_id)

    def revert(self):
        self.model.restore_cycle(self.cycle_id)


class ImportLabels(CycleCommand):
    """A label file applied to one or more recordings (see :func:`trainer.labelfiles.import_labels`)."""

    def __init__(self, model, path, recording_id: int | None, fmt: str | None, mode: str, report=None):
        super().__init__(model, recording_id or 0, f"Import labels from {Path(path).name} ({mode})", report)
        self.path = path
        self.target = recording_id
        self.fmt = fmt
        self.mode = mode
        self.results = None

    def recordings(self):
        return [r.recording_id for r in self.results or []]

    def apply(self):
        if self.results is None:
            self.results = self.model.import_labels(self.path, self.target, self.fmt, self.mode)
            return
        for result in self.results:
            for cid in result.deleted:
                self.model.delete_cycle(cid, reason="redo import")
            for cid in result.added:
                self.model.restore_cycle(cid)
            for cid, _, after in result.relabelled:
                self.model.update_cycle(cid, label=after, reason="redo import")

    def revert(self):
        for result in self.results:
            for cid in result.added:
                self.model.delete_cycle(cid, reason="undo import")
            for cid in result.deleted:
                self.model.restore_cycle(cid)
            for cid, before, _ in result.relabelled:
                self.model.update_cycle(cid, label=before, reason="undo import")

    def summary(self) -> str:
        return "; ".join(r.summary() for r in self.results or [])
