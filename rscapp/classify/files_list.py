"""The recordings to classify: one row each with its progress bar, then its cycle count or its one-line error."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QProgressBar, QTableWidget, QTableWidgetItem

from trainer.infer.classify import UNCERTAIN

from .jobs import Item

COLUMNS = ("Recording", "Progress", "Result")
ERROR_COLOR = "#c62828"


class FilesList(QTableWidget):
    """Rows in the order added; ``selectedRow`` says which row's result the view shows (-1: none)."""

    selectedRow = Signal(int)

    def __init__(self, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        self.items: list[Item] = []
        self.results: list = []  # RecordingResult, or None (not classified, or failed)
        self.errors: list[str | None] = []
        self.stale: set[int] = set()  # rows whose project cycles changed after they were classified
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.setWordWrap(True)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        header.setStretchLastSection(True)
        self.setColumnWidth(0, 150)
        self.setColumnWidth(1, 90)
        self.itemSelectionChanged.connect(lambda: self.selectedRow.emit(self.current_row()))

    def current_row(self) -> int:
        rows = self.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def add(self, item: Item) -> int:
        """Add a recording (a path already listed is not added twice); returns its row."""
        for row, known in enumerate(self.items):
            if known.path == item.path and known.recording_id == item.recording_id:
                return row
        row = self.rowCount()
        self.insertRow(row)
        self.items.append(item)
        self.results.append(None)
        self.errors.append(None)
        name = QTableWidgetItem(item.name)
        name.setToolTip(str(item.path) + (f"\nrecording {item.recording_id} of the project" if item.recording_id else ""))
        self.setItem(row, 0, name)
        bar = QProgressBar()
        bar.setRange(0, 1)
        bar.setValue(0)
        bar.setTextVisible(False)
        self.setCellWidget(row, 1, bar)
        self.setItem(row, 2, QTableWidgetItem("not classified"))
        return row

    def clear_all(self) -> None:
        self.setRowCount(0)
        self.items, self.results, self.errors, self.stale = [], [], [], set()

    def mark_stale(self, row: int) -> None:
        self.stale.add(row)
        self.show_result(row)

    def bar(self, row: int) -> QProgressBar:
        return self.cellWidget(row, 1)

    def reset_rows(self, rows: list[int]) -> None:
        for row in rows:
            self.results[row], self.errors[row] = None, None
            self.bar(row).setRange(0, 1)
            self.bar(row).setValue(0)
            self._say(row, "waiting", None)

    # -- news from the worker ----------------------------------------------------------------------
    def started(self, row: int) -> None:
        self.bar(row).setRange(0, 0)  # busy: the number of cycles is known only once they are found
        self._say(row, "classifying...", None)

    def stepped(self, row: int, batches: int) -> None:
        self._say(row, f"classifying... ({batches} batch{'es' if batches != 1 else ''})", None)

    def classified(self, row: int, result) -> None:
        self.results[row], self.errors[row] = result, None
        self.stale.discard(row)
        self.bar(row).setRange(0, 1)
        self.bar(row).setValue(1)
        self.show_result(row)

    def failed(self, row: int, message: str) -> None:
        self.results[row], self.errors[row] = None, message
        self.bar(row).setRange(0, 1)
        self.bar(row).setValue(0)
        # The row names its file already: the folder stays in the tooltip, the reason stays visible.
        path = str(self.items[row].path)
        short = message.replace(path, self.items[row].path.name, 1) if message.startswith(path) else message
        self._say(row, short, ERROR_COLOR, tip=message)

    def stopped(self, rows: list[int]) -> None:
        """Cancel: rows the worker did not finish say so (their earlier results, if any, are gone)."""
        for row in rows:
            if self.results[row] is None and self.errors[row] is None:
                self.bar(row).setRange(0, 1)
                self.bar(row).setValue(0)
                self._say(row, "cancelled", "#757575")

    def show_result(self, row: int) -> None:
        result = self.results[row]
        if result is None:
            return
        uncertain = sum(c.label == UNCERTAIN for c in result.cycles)
        disagree = sum(c.disagrees for c in result.cycles)
        text = f"{len(result.cycles)} cycles, {uncertain} uncertain" + (f", {disagree} disagree" if disagree else "")
        tip = f"cycles from {result.cycles_from}\n" + "\n".join(result.notes)
        if row in self.stale:
            text += "; its cycles changed since: classify again"
            tip = "The project's cycles of this recording were edited after it was classified\n" + tip
        self._say(row, text, "#ef6c00" if disagree or row in self.stale else None, tip=tip.strip())

    def _say(self, row: int, text: str, color: str | None, tip: str = "") -> None:
        cell = QTableWidgetItem(text)
        if color:
            cell.setForeground(QColor(color))
        cell.setToolTip(tip or text)
        cell.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.setItem(row, 2, cell)
        self.resizeRowToContents(row)

    def status_text(self, row: int) -> str:
        return self.item(row, 2).text()
