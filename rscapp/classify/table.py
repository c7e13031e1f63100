"""The cycle table under the spectrogram: one row per cycle with every number the model gave it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem

from trainer.infer.classify import UNCERTAIN

from ..style import LABEL_COLORS

FIXED = ("start", "end", "source", "label", "confidence")
DISAGREE_BACKGROUND = "#fff3cd"
UNCERTAIN_COLOR = "#9e9e9e"


def label_colour(label: str) -> str:
    return LABEL_COLORS.get(label, UNCERTAIN_COLOR)


class CycleTable(QTableWidget):
    """Rows in time order; ``cycleSelected`` gives the index of the cycle clicked (-1: none)."""

    cycleSelected = Signal(int)

    def __init__(self, parent=None):
        super().__init__(0, 0, parent)
        self.classes: tuple[str, ...] = ()
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setDefaultSectionSize(22)
        self.horizontalHeader().setStretchLastSection(True)
        self.itemSelectionChanged.connect(self._selection)

    def columns(self) -> list[str]:
        return [*FIXED, *(f"p({c})" for c in self.classes), "annotated", "disagrees"]

    def show_result(self, result) -> None:
        """Fill the table from a result (None empties it); keeps the selected row where it can."""
        keep = self.currentRow()
        self.blockSignals(True)
        self.setRowCount(0)
        cycles = result.cycles if result is not None else []
        self.classes = tuple(cycles[0].probabilities) if cycles else self.classes
        names = self.columns()
        self.setColumnCount(len(names))
        self.setHorizontalHeaderLabels(names)
        self.setRowCount(len(cycles))
        for row, cycle in enumerate(cycles):
            values = [f"{cycle.start:.3f}", f"{cycle.end:.3f}", cycle.source, cycle.label, f"{cycle.confidence:.3f}",
                      *(f"{cycle.probabilities[c]:.3f}" for c in self.classes), cycle.annotated or "",
                      "yes" if cycle.disagrees else ""]
            for column, value in enumerate(values):
                cell = QTableWidgetItem(value)
                if column in (0, 1, 4) or 5 <= column < 5 + len(self.classes):
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if cycle.disagrees:
                    cell.setBackground(QBrush(QColor(DISAGREE_BACKGROUND)))
                self.setItem(row, column, cell)
            self.item(row, 3).setForeground(QBrush(QColor(label_colour(cycle.label))))
        self.resizeColumnsToContents()
        if 0 <= keep < len(cycles):
            self.selectRow(keep)
        self.blockSignals(False)

    def column_values(self, name: str) -> list[str]:
        column = self.columns().index(name)
        return [self.item(row, column).text() for row in range(self.rowCount())]

    def select_cycle(self, index: int) -> None:
        if 0 <= index < self.rowCount() and index != self.currentRow():
            self.selectRow(index)
            self.scrollToItem(self.item(index, 0))

    def _selection(self) -> None:
        rows = self.selectionModel().selectedRows()
        self.cycleSelected.emit(rows[0].row() if rows else -1)
