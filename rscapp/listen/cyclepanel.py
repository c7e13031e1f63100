"""The side panel of the Listen view: the recording's cycles as a table, and the edit history.

Raven Pro's selection table and Audacity's label editor: every cycle with its exact times, sortable
by eye, editable by typing a time (for when dragging is not precise enough). The history tab is the
``cycle_edits`` trail of the selected cycle (or of the whole recording): who changed what, when, from
what to what, which is what a clinical study has to be able to show.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
)

from trainer.vocab import LABELS

from ..style import qcolor
from .keys import key_action

# Keys a table needs for itself; every other key the view handles (Space, 1-4, Delete, ...).
TABLE_KEYS = {
    Qt.Key_Up, Qt.Key_Down, Qt.Key_Left, Qt.Key_Right, Qt.Key_Home, Qt.Key_End, Qt.Key_PageUp,
    Qt.Key_PageDown, Qt.Key_Tab, Qt.Key_Backtab, Qt.Key_Return, Qt.Key_Enter, Qt.Key_F2,
}


def describe_change(row: dict) -> str:
    """One line for a history row: 'label normal → wheeze', 'end 3.272 → 3.400 s', 'deleted', ..."""
    before, after, action = row.get("before") or {}, row.get("after") or {}, row["action"]
    if action in ("create", "import"):
        return f"{LABELS[after.get('label', 0)]}, {after.get('start', 0):.3f}-{after.get('end', 0):.3f} s"
    if action == "delete":
        return "deleted"
    if action == "restore":
        return "restored"
    parts = []
    if before.get("label") != after.get("label"):
        parts.append(f"label {LABELS[before.get('label', 0)]} \u2192 {LABELS[after.get('label', 0)]}")
    for key in ("start", "end"):
        if before.get(key) != after.get(key) and key in after:
            parts.append(f"{key} {before.get(key, 0):.3f} \u2192 {after[key]:.3f} s")
    return ", ".join(parts) or "no change"


class CyclePanel(QTabWidget):
    cycleActivated = Signal(int)  # a row was chosen
    boundaryEdited = Signal(int, float, float)  # cycle id, start, end typed into the table

    COLUMNS = ("#", "Start", "End", "Length", "Label", "Origin")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.project = None
        self.cycles: list[dict] = []
        self._filling = False
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        for col in (1, 2, 3):
            self.table.horizontalHeaderItem(col).setToolTip("seconds")
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setWordWrap(False)
        self.table.setToolTip("Click a row to select the cycle; double-click a time to type a new one (F2 edits)")
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        self.table.itemChanged.connect(self._on_item_changed)
        self.history = QTableWidget(0, 3)
        self.history.setHorizontalHeaderLabels(("When (UTC)", "Who", "What"))
        self.history.setWordWrap(False)
        self.history.setToolTip("Every change to these cycles, newest first (the project keeps them all)")
        self.history.verticalHeader().setVisible(False)
        self.history.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.history.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.history.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.history.horizontalHeader().setStretchLastSection(True)
        self.addTab(self.table, "Cycles")
        self.addTab(self.history, "History")
        self.history_label = "History"

    def forward_keys_to(self, view) -> None:
        """Let the view's keys (Space, 1-4, Delete, ...) work while the table has the focus."""
        self._key_owner = view
        for widget in (self.table, self.history):
            widget.installEventFilter(self)

    def eventFilter(self, obj, event):
        if event.type() in (QEvent.KeyPress, QEvent.ShortcutOverride) and not self.table.state() == QAbstractItemView.EditingState:
            action = key_action(self._key_owner, event) if event.key() not in TABLE_KEYS else None
            if action is not None:
                event.accept()
                if event.type() == QEvent.KeyPress:
                    action()
                return True
        return super().eventFilter(obj, event)

    # -- contents -----------------------------------------------------------------------------
    def set_cycles(self, cycles: list[dict], selected: int | None) -> None:
        self._filling = True
        same_rows = [c["id"] for c in cycles] == [c["id"] for c in self.cycles]
        self.cycles = list(cycles)
        if not same_rows:
            self.table.setRowCount(len(cycles))
        for row, cycle in enumerate(cycles):
            self._show_row(row, cycle, fresh=not same_rows)
        self._filling = False
        self.select(selected)
        self._set_tab_text(0, f"Cycles ({len(cycles)})")

    def _show_row(self, row: int, cycle: dict, fresh: bool) -> None:
        """Fill one row; on a row that shows the same cycle already, change only the cells that differ."""
        values = (
            str(cycle["id"]),
            f"{cycle['start']:.3f}",
            f"{cycle['end']:.3f}",
            f"{cycle['end'] - cycle['start']:.3f}",
            LABELS[cycle["label"]],
            cycle.get("origin", "") + (" ✎" if cycle.get("edited") else ""),
        )
        for col, value in enumerate(values):
            item = None if fresh else self.table.item(row, col)
            if item is not None:
                if item.text() != value:
                    item.setText(value)
            else:
                item = QTableWidgetItem(value)
                if col not in (1, 2):
                    item.setFlags(item.flags() & ~Qt.ItemIsEditable)
                if col in (1, 2, 3):
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                item.setData(Qt.UserRole, cycle["id"])
                self.table.setItem(row, col, item)
            if col == 4:
                item.setBackground(QBrush(qcolor(cycle["label"], 150)))
            if col == 5:
                item.setToolTip("Edited since it was imported; the History tab says how" if cycle.get("edited") else "")

    def select(self, cycle_id: int | None) -> None:
        self._filling = True
        self.table.clearSelection()
        for row, cycle in enumerate(self.cycles):
            if cycle["id"] == cycle_id:
                self.table.selectRow(row)
                self.table.scrollToItem(self.table.item(row, 0))
                break
        self._filling = False

    def set_history(self, rows: list[dict], title: str, per_cycle: bool = True) -> None:
        self.history.setRowCount(len(rows))
        for index, row in enumerate(reversed(rows)):  # newest first
            at = row.get("at") or ""
            what = f"{row['action']}: {describe_change(row)}"
            if not per_cycle:
                what = f"cycle {row['cycle_id']} {what}"
            tip = f"{at}\n{row.get('author') or ''}: {row['action']} of cycle {row['cycle_id']}"
            if row.get("reason"):
                tip += f"\nreason: {row['reason']}"
            for col, value in enumerate((at[5:19].replace("T", " "), row.get("author") or "", what)):
                item = QTableWidgetItem(value)
                item.setToolTip(tip)
                self.history.setItem(index, col, item)
        self._set_tab_text(1, f"{title} ({len(rows)})")

    def _set_tab_text(self, index: int, text: str) -> None:
        if self.tabText(index) != text:  # a new tab text lays the whole panel out again
            self.setTabText(index, text)

    # -- user input -----------------------------------------------------------------------------
    def _on_row_selected(self) -> None:
        if self._filling:
            return
        items = self.table.selectedItems()
        if items:
            self.cycleActivated.emit(int(items[0].data(Qt.UserRole)))

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() not in (1, 2):
            return
        cycle = next((c for c in self.cycles if c["id"] == item.data(Qt.UserRole)), None)
        if cycle is None:
            return
        try:
            value = float(item.text().replace(",", "."))
        except ValueError:
            value = None
        start, end = cycle["start"], cycle["end"]
        if value is not None:
            start, end = (value, end) if item.column() == 1 else (start, value)
        if value is None or (start, end) == (cycle["start"], cycle["end"]):
            self._filling = True
            item.setText(f"{cycle['start' if item.column() == 1 else 'end']:.3f}")
            self._filling = False
            return
        self.boundaryEdited.emit(cycle["id"], start, end)
