"""The Library's right-click menus, and the edit-history dialog they open."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QPoint
from PySide6.QtWidgets import QMenu

from .. import dialogs

if TYPE_CHECKING:
    from .view import LibraryView


class LibraryMenus(QObject):
    def __init__(self, library: "LibraryView"):
        super().__init__(library)
        self.library = library

    def recording_menu(self, pos: QPoint) -> None:
        lib = self.library
        index = lib.recordings_view.indexAt(pos)
        if not index.isValid() or lib.project is None:
            return
        recording_id = lib.recordings.id_at(index.row())
        status = lib.recordings.value(index.row(), "audio_status")
        menu = QMenu(lib)
        menu.addAction("Open in Listen", lambda: lib.openRequested.emit(recording_id, -1))
        locate = menu.addAction("Locate audio file...", lambda: lib.locate_audio(recording_id))
        if status != "ok":
            menu.setDefaultAction(locate)
        menu.addAction("Show its cycles", lambda: lib.show_cycles_of(recording_id))
        menu.addAction("Edit history...", lambda: self.show_history(recording_id=recording_id))
        menu.addSeparator()
        menu.addAction("Check audio files", lambda: lib.check_audio())
        menu.exec(lib.recordings_view.viewport().mapToGlobal(pos))

    def cycle_menu(self, pos: QPoint) -> None:
        lib = self.library
        index = lib.cycles_view.indexAt(pos)
        if not index.isValid():
            return
        row = index.row()
        recording_id = int(lib.cycles.value(row, "recording_id"))
        cycle_id = lib.cycles.id_at(row)
        menu = QMenu(lib)
        menu.addAction("Open in Listen at this cycle", lambda: lib.openRequested.emit(recording_id, cycle_id))
        menu.addAction("Select its recording", lambda: lib.select_recording(recording_id))
        menu.addAction("Edit history...", lambda: self.show_history(cycle_id=cycle_id))
        menu.exec(lib.cycles_view.viewport().mapToGlobal(pos))

    def show_history(self, cycle_id: int | None = None, recording_id: int | None = None) -> list[dict]:
        """The append-only edit history of one cycle or of every cycle of a recording."""
        project = self.library.project
        if project is None:
            return []
        rows = project.cycle_history(cycle_id=cycle_id, recording_id=recording_id)
        if cycle_id is not None:
            title = f"History of cycle {cycle_id}"
        else:
            title = f"History of {project.recording(recording_id)['name']}"
        dialogs.show_history(self.library, title, rows)
        return rows
