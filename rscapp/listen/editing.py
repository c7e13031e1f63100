"""Listen's edits: each is an undoable command (:mod:`.commands`) that writes through the project model,
run once before it is pushed so that a refused edit (an overlap, say) never lands on the undo stack.
Label files in and out of the open recording sit here too; an import is one undo step."""

from __future__ import annotations

from pathlib import Path

from trainer.labelfiles import LabelError, export_labels
from trainer.project import ProjectError
from trainer.vocab import LABELS

from . import commands
from .cycletrack import MIN_CYCLE


class EditingMixin:
    def _run(self, command: commands.CycleCommand) -> bool:
        try:
            command.execute()
        except (ProjectError, LabelError) as exc:
            self._status(str(exc))
            return False
        self._pushing = True
        try:
            self._stack.push(command)
        finally:
            self._pushing = False
        self._status(command.text())
        return True

    def relabel(self, label: int) -> bool:
        cycle = self.cycle(self.current_cycle_id)
        if cycle is None:
            self._status("Select a cycle first (click it, or N / P)")
            return False
        if cycle["label"] == label:
            self._status(f"Cycle {cycle['id']} is already {LABELS[label]}")
            return False
        return self._run(commands.Relabel(self.model, cycle["id"], label, self._status))

    def move_boundary(self, cycle_id: int, start: float, end: float) -> bool:
        return self._run(commands.MoveBoundary(self.model, cycle_id, start, end, self._status))

    def _on_boundary_moved(self, cycle_id: int, start: float, end: float) -> None:
        if not self.move_boundary(cycle_id, start, end):
            self._reload_cycles()  # put the dragged edge back where the project has it

    def add_cycle(self, start: float, end: float, label: int = 0) -> int | None:
        if self.current_recording_id is None:
            return None
        command = commands.AddCycle(self.model, self.current_recording_id, start, end, label, self._status)
        if not self._run(command):
            return None
        self.select_cycle(command.cycle_id, ensure_visible=False)
        return command.cycle_id

    def add_cycle_over_selection(self) -> int | None:
        """Ctrl+B: a new (normal) cycle over the time selection, clipped to the gap it starts in."""
        if self.selection is None:
            self._status("Drag in the waveform or spectrogram to select a span, then Ctrl+B adds a cycle there")
            return None
        start, end = self.selection
        gap = self.track.free_gap(start)
        if gap is None:
            inside = self.track.cycle_at(start)
            self._status(f"The selection starts inside cycle {inside['id']}; cycles may not overlap")
            return None
        clipped = (max(start, gap[0]), min(end, gap[1]))
        if clipped[1] - clipped[0] < MIN_CYCLE:
            self._status("The selection is too short for a cycle")
            return None
        cycle_id = self.add_cycle(*clipped)
        if cycle_id is not None:
            self.set_selection(None)
            if clipped != (start, end):
                self._status(f"Added cycle {cycle_id} at {clipped[0]:.3f}-{clipped[1]:.3f} s (clipped to the free gap)")
        return cycle_id

    def split_at_playhead(self) -> bool:
        at = self.player.position
        cycle = self.track.cycle_at(at)
        if cycle is None:
            self._status(f"No cycle under the playhead at {at:.3f} s to split")
            return False
        if at - cycle["start"] < MIN_CYCLE or cycle["end"] - at < MIN_CYCLE:
            self._status("The playhead is too close to the cycle's edge to split there")
            return False
        return self._run(commands.SplitCycle(self.model, cycle["id"], at, self._status))

    def delete_selected(self) -> bool:
        cycle = self.cycle(self.current_cycle_id)
        if cycle is None:
            self._status("Select a cycle to delete")
            return False
        following = self.track.neighbour(cycle["id"], 1) or self.track.neighbour(cycle["id"], -1)
        if not self._run(commands.DeleteCycle(self.model, cycle["id"], self._status)):
            return False
        self.select_cycle(following["id"] if following else None, ensure_visible=False)
        return True

    # -- label files ---------------------------------------------------------------------------------
    def export_labels(self, path, fmt: str | None = None) -> bool:
        if self.project is None or self.current_recording_id is None:
            return False
        try:
            out = export_labels(self.project, path, fmt, [self.current_recording_id])
        except (OSError, ValueError) as exc:
            self._status(f"Export failed: {exc}")
            return False
        self._status(f"Exported {len(self.cycles)} cycles to {out}")
        return True

    def import_labels(self, path, fmt: str | None = None, mode: str = "replace") -> bool:
        """Apply a label file to the open recording (a CSV may name others) as one undoable step."""
        if self.project is None or self.current_recording_id is None:
            return False
        command = commands.ImportLabels(self.model, path, self.current_recording_id, fmt, mode, self._status)
        if not self._run(command):
            return False
        self._status(f"Imported {Path(path).name}: {command.summary()}")
        return True
