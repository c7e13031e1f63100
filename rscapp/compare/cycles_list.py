"""A list of cycles to listen to (a confusion-matrix cell, the label review): a double-click opens one in Listen."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from trainer.vocab import LABELS

from ..style import qcolor

COLUMNS = (("cycle_id", "cycle"), ("recording", "recording"), ("start", "start (s)"), ("end", "end (s)"),
           ("label", "stored label"), ("predicted", "predicted"), ("probability", "p(predicted)"))
EXTRA = {"label_probability": "p(stored label)"}
ROW = Qt.ItemDataRole.UserRole


class CyclesList(QTableWidget):
    openCycle = Signal(int, int)  # recording id, cycle id

    def __init__(self, extra: tuple[str, ...] = (), parent=None):
        super().__init__(parent)
        self.columns = list(COLUMNS) + [(key, EXTRA[key]) for key in extra]
        self.rows: list[dict] = []
        self.setColumnCount(len(self.columns))
        self.setHorizontalHeaderLabels([title for _, title in self.columns])
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(20)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.horizontalHeader().setStretchLastSection(True)
        self.setToolTip("Double-click a cycle to open it in Listen")
        self.cellDoubleClicked.connect(lambda row, _col: self.open_row(row))

    def show_cycles(self, rows: list[dict]) -> None:
        """Each row: cycle_id, recording_id, recording, start, end, label, predicted and the optional columns."""
        self.rows = rows
        self.setSortingEnabled(False)
        self.clearContents()
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, (key, _) in enumerate(self.columns):
                item = QTableWidgetItem(self._text(key, row.get(key)))
                item.setData(ROW, r)
                if key in ("label", "predicted") and row.get(key) is not None:
                    item.setForeground(QBrush(qcolor(int(row[key]))))
                if key in ("cycle_id", "start", "end", "probability", "label_probability"):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(r, c, item)
        self.resizeColumnsToContents()

    @staticmethod
    def _text(key: str, value) -> str:
        if value is None:
            return "-"
        if key in ("label", "predicted"):
            return LABELS[int(value)]
        if key in ("start", "end"):
            return f"{value:.2f}"
        if key in ("probability", "label_probability"):
            return f"{value:.3f}"
        return str(value)

    def cycle_ids(self) -> list[int]:
        return [int(row["cycle_id"]) for row in self.rows]

    def open_row(self, row: int) -> None:
        item = self.item(row, 0)
        if item is None:
            return
        found = self.rows[int(item.data(ROW))]
        self.openCycle.emit(int(found["recording_id"]), int(found["cycle_id"]))
