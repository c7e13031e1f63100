"""What the Classify view does with the open project: add its recordings, store results, follow it closing.

Stored results go through the :class:`~rscapp.model.ProjectModel`'s transaction, one for the whole store,
so the other views (and other processes, through the model's poll) see them together or not at all.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView, QDialog, QDialogButtonBox, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout,
)

from .jobs import Item, one_line


class RecordingsDialog(QDialog):
    """Pick recordings of the project (several at once), with a name filter."""

    def __init__(self, recordings: list[dict], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Classify recordings of the project")
        self.resize(420, 520)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by name")
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        for rec in recordings:
            item = QListWidgetItem(f"{rec['name']}  ({rec.get('split') or 'no split'}, {rec.get('duration') or 0:.1f} s)")
            item.setData(Qt.ItemDataRole.UserRole, int(rec["id"]))
            self.list.addItem(item)
        self.filter.textChanged.connect(self._filter)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)

    def _filter(self, text: str) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setHidden(text.lower() not in item.text().lower())

    def chosen(self) -> list[int]:
        return [item.data(Qt.ItemDataRole.UserRole) for item in self.list.selectedItems() if not item.isHidden()]


class ProjectSide:
    def __init__(self, view):
        self.view = view

    @property
    def project(self):
        return self.view.model.project if self.view.model is not None else None

    def ask_recordings(self) -> None:
        if self.project is None:
            return
        dialog = RecordingsDialog(self.project.recordings(), self.view)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.add_recordings(dialog.chosen())

    def add_recordings(self, ids) -> list[int]:
        """Add recordings of the project by id; one whose audio file is missing says so in its row."""
        items, missing = [], []
        for rid in ids:
            rec = self.project.recording(int(rid))
            path = self.project.audio_path(rec)
            items.append(Item(Path(path) if path else Path(rec["name"]), rec["name"], int(rid)))
            if path is None or not Path(path).is_file():
                missing.append(len(items) - 1)
        rows = self.view.add_items(items)
        for index in missing:
            self.view.files.failed(rows[index], f"{items[index].path}: the audio file of {items[index].name} is missing")
        return rows

    def cycles_changed(self, _cycle_ids, recording_ids) -> None:
        """Cycles of listed project recordings were edited (here, in Listen, by another process): their
        results compare with labels or spans that are no longer there, so their rows say so."""
        touched = set(recording_ids or ())
        for row, item in enumerate(self.view.files.items):
            if item.recording_id in touched and self.view.files.results[row] is not None:
                self.view.files.mark_stale(row)

    def project_changed(self, project) -> None:
        """A project closed or opened: its recordings leave the list (their ids would mean nothing now)."""
        files = self.view.files
        keep = [(item, result, error) for item, result, error in zip(files.items, files.results, files.errors)
                if item.recording_id is None]
        if len(keep) != len(files.items) and self.view.task is None:
            files.clear_all()
            for item, result, error in keep:
                row = files.add(item)
                if result is not None:
                    files.classified(row, result)
                elif error:
                    files.failed(row, error)
            self.view._show_row(-1)
        self.view._update_buttons()

    def store(self) -> int:
        """Store every classified recording's result in the project, in one transaction; returns how many."""
        model, files = self.view.model, self.view.files
        if self.project is None:
            return 0
        done = [(item, result) for item, result in zip(files.items, files.results) if result is not None]
        if not done:
            return 0
        try:
            from trainer.project import store_classification

            with model.transaction() as project:
                for item, result in done:
                    store_classification(project, result, recording_id=item.recording_id)
            cycles = sum(len(result.cycles) for _item, result in done)
        except Exception as exc:  # noqa: BLE001 - a refused write is a message, and nothing was stored
            self.view.statusMessage.emit(f"Nothing stored: {one_line(exc)}")
            return 0
        self.view.statusMessage.emit(f"Stored {cycles} cycles of {len(done)} recording(s) in {self.project.path.name}")
        return len(done)

    def open_in_listen(self, cycle_row: int) -> None:
        row = self.view.files.current_row()
        if 0 <= row < len(self.view.files.items) and self.view.files.items[row].recording_id is not None:
            self.view.openRecording.emit(self.view.files.items[row].recording_id, -1)
