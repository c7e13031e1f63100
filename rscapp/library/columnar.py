"""A table model that holds its rows as one numpy array per field.

A filter is a boolean mask over those arrays and a sort is one ``lexsort``, so 7,000 or 70,000 rows filter
in a few milliseconds and the view only formats the rows on screen. An edit to a few rows changes them in
place (:meth:`ColumnarModel.update_rows`): the view repaints those rows and keeps its selection, with no
reset of the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

DISPLAY = int(Qt.ItemDataRole.DisplayRole.value)
TOOLTIP = int(Qt.ItemDataRole.ToolTipRole.value)
FONT = int(Qt.ItemDataRole.FontRole.value)
ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole.value)
BACKGROUND = int(Qt.ItemDataRole.BackgroundRole.value)
FOREGROUND = int(Qt.ItemDataRole.ForegroundRole.value)
ID_ROLE = int(Qt.ItemDataRole.UserRole.value)  # the row's id (recording or cycle)

_BRUSHES: dict[str, QBrush] = {}
_FONTS: dict[tuple[bool, bool], QFont] = {}


def brush(color: str) -> QBrush:
    if color not in _BRUSHES:
        _BRUSHES[color] = QBrush(QColor(color))
    return _BRUSHES[color]


def font(bold: bool = False, italic: bool = False) -> QFont:
    if (bold, italic) not in _FONTS:
        made = QFont()
        made.setBold(bold)
        made.setItalic(italic)
        _FONTS[(bold, italic)] = made
    return _FONTS[(bold, italic)]


@dataclass(frozen=True)
class Column:
    title: str
    field: str
    kind: str = "text"  # text, int, float, seconds, flag
    width: int = 90
    sort_fields: tuple[str, ...] = ()  # tie-breakers after `field`
    tooltip: str = ""


Mask = Callable[[], "np.ndarray | None"]


class ColumnarModel(QAbstractTableModel):
    """Rows held as one numpy array per field; the view sees ``rows`` (filtered, sorted indices)."""

    columns: Sequence[Column] = ()
    id_field = "id"
    # Subclasses name the fields of their query's rows, in order, and the numeric ones' kinds.
    _FIELDS: tuple[str, ...] = ()
    _KINDS: dict[str, str] = {}

    def __init__(self, parent=None):
        super().__init__(parent)
        self.fields: dict[str, np.ndarray] = {}
        self.size = 0
        self.order = np.zeros(0, dtype=np.int64)  # all rows, sorted
        self.mask: np.ndarray | None = None  # None: every row passes
        self.rows = np.zeros(0, dtype=np.int64)  # what the view shows
        self.sort_column = 0
        self.sort_order = Qt.SortOrder.AscendingOrder
        self._codes: dict[str, np.ndarray] = {}
        self._positions: dict[int, int] | None = None  # id -> index into the arrays

    # -- loading --------------------------------------------------------------------------
    def arrays_from_rows(self, rows: list[tuple]) -> dict[str, np.ndarray]:
        names = list(self._FIELDS)
        if not rows:
            return {name: self._to_array(name, ()) for name in names}
        cols = list(zip(*rows))
        return {name: self._to_array(name, values) for name, values in zip(names, cols)}

    def _to_array(self, name: str, values: tuple) -> np.ndarray:
        kind = self._KINDS.get(name, "text")
        if kind == "int":
            return np.fromiter((v if v is not None else 0 for v in values), dtype=np.int64, count=len(values))
        if kind == "float":
            return np.fromiter((v if v is not None else np.nan for v in values), dtype=np.float64, count=len(values))
        out = np.empty(len(values), dtype=object)
        out[:] = [v if v is not None else "" for v in values]
        return out

    def set_arrays(self, fields: dict[str, np.ndarray], mask: Mask | None = None) -> None:
        """New rows (one reset); ``mask`` computes the filter over them, else a mask that no longer fits goes."""
        self.beginResetModel()
        self.fields = fields
        self.size = len(next(iter(fields.values()))) if fields else 0
        self._codes = {}
        self._positions = None
        self.order = self._sorted_order()
        if mask is not None:
            self.mask = mask()
        elif self.mask is not None and len(self.mask) != self.size:
            self.mask = None
        self.rows = self._visible(self.mask)
        self.endResetModel()

    def replace_where(self, field: str, values, new: dict[str, np.ndarray], mask: Mask) -> None:
        """Swap the rows whose ``field`` is one of ``values`` for ``new`` (e.g. some recordings' cycles)."""
        keep = ~np.isin(self.fields[field], np.fromiter((int(v) for v in values), dtype=np.int64))
        self.set_arrays({name: np.concatenate([self.fields[name][keep], new[name]]) for name in self.fields}, mask)

    def update_rows(self, ids, new: dict[str, np.ndarray], mask: Mask) -> bool:
        """Bring the rows with these ids up to date: ``new`` holds those still there (changed or added).

        When every id is already a row, the values change in place and the view repaints them, keeping
        its selection; the rows re-sort as far as the changed values ask. Rows that come or go, in the
        table or through its filter, reset it (rarer: an add, a delete, an import, a relabel out of the
        label filter). Returns whether it was reset, when the caller selects its row again.
        """
        positions = self.positions()
        wanted = {int(i) for i in ids}
        incoming = [int(i) for i in new[self.id_field]]
        if set(incoming) != wanted or any(i not in positions for i in incoming):
            self.replace_where(self.id_field, wanted, new, mask)
            return True
        at = np.fromiter((positions[i] for i in incoming), dtype=np.int64, count=len(incoming))
        resort = False
        sort_fields = self._sort_fields()
        for name, values in new.items():
            column = self.fields[name]
            if np.array_equal(column[at], values):
                continue
            column[at] = values
            self._codes.pop(name, None)
            resort |= name in sort_fields
        if resort:
            self.order = self._sorted_order()
        self.mask = mask()
        rows = self._visible(self.mask)
        if len(rows) != len(self.rows):  # the change moved rows in or out of the filter
            self.set_mask(self.mask)
            return True
        self._relayout(rows)
        shown = np.nonzero(np.isin(self.rows, at))[0]
        if len(shown):
            last = len(self.columns) - 1
            self.dataChanged.emit(self.index(int(shown.min()), 0), self.index(int(shown.max()), last))
        return False

    def positions(self) -> dict[int, int]:
        if self._positions is None:
            ids = self.fields.get(self.id_field, np.zeros(0, dtype=np.int64))
            self._positions = {int(ident): i for i, ident in enumerate(ids.tolist())}
        return self._positions

    # -- filtering and sorting -------------------------------------------------------------------
    def _visible(self, mask: np.ndarray | None) -> np.ndarray:
        return self.order if mask is None else self.order[mask[self.order]]

    def set_mask(self, mask: np.ndarray | None) -> None:
        self.beginResetModel()
        self.mask = mask
        self.rows = self._visible(mask)
        self.endResetModel()

    def _relayout(self, rows: np.ndarray) -> None:
        """Show ``rows`` (as many as before, in another order), carrying the selection and current index
        over by id, not by row."""
        if np.array_equal(rows, self.rows):
            return
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        ids = [self.id_at(index.row()) if 0 <= index.row() < len(self.rows) else None for index in persistent]
        self.rows = rows
        moved = []
        for index, ident in zip(persistent, ids):
            row = self.row_of_id(ident) if ident is not None else None
            moved.append(self.index(row, index.column()) if row is not None else QModelIndex())
        self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit()

    def codes(self, field: str) -> np.ndarray:
        """Sortable integer codes of a text field (cached until its values change)."""
        if field not in self._codes:
            values = self.fields[field]
            if values.dtype == object:
                _, inverse = np.unique(values.astype(str), return_inverse=True)
                self._codes[field] = inverse.reshape(-1)
            else:
                self._codes[field] = values
        return self._codes[field]

    def _sort_fields(self) -> tuple[str, ...]:
        column = self.columns[self.sort_column]
        return (column.field, *column.sort_fields)

    def _sorted_order(self) -> np.ndarray:
        if not self.size:
            return np.zeros(0, dtype=np.int64)
        keys = [self.codes(f) for f in reversed(self._sort_fields())]
        order = np.lexsort(keys) if len(keys) > 1 else np.argsort(keys[0], kind="stable")
        if self.sort_order == Qt.SortOrder.DescendingOrder:
            order = order[::-1]
        return order.astype(np.int64, copy=False)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self.columns):
            return
        self.sort_column, self.sort_order = column, order
        self.order = self._sorted_order()
        self._relayout(self._visible(self.mask))

    # -- lookups ---------------------------------------------------------------------------
    def id_at(self, row: int) -> int:
        return int(self.fields[self.id_field][self.rows[row]])

    def value(self, row: int, field: str):
        return self.fields[field][self.rows[row]]

    def row_of_id(self, ident: int) -> int | None:
        if not self.size:
            return None
        hits = np.nonzero(self.fields[self.id_field][self.rows] == ident)[0]
        return int(hits[0]) if len(hits) else None

    def visible_ids(self) -> np.ndarray:
        return self.fields[self.id_field][self.rows] if self.size else np.zeros(0, dtype=np.int64)

    # -- Qt model ----------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.columns):
            return None
        column = self.columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.title
        if role == Qt.ItemDataRole.ToolTipRole and column.tooltip:
            return column.tooltip
        return self.header_role(column, role)

    def header_role(self, column: Column, role):
        return None

    # Roles as plain ints: the view asks ~8 roles per visible cell on every repaint, and comparing
    # PySide enums costs more than the lookup itself.
    _ALIGN_RIGHT = int((Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter).value)
    _ALIGN_LEFT = int((Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter).value)
    styled_roles: frozenset[int] = frozenset()  # roles style_role answers, besides display/alignment/id

    def data(self, index, role=0):
        role = int(role) if not isinstance(role, int) else role
        if role == DISPLAY:
            column = self.columns[index.column()]
            return self.display(column, self.rows[index.row()])
        if role == ALIGNMENT:
            kind = self.columns[index.column()].kind
            return self._ALIGN_RIGHT if kind in ("int", "float", "seconds") else self._ALIGN_LEFT
        if role == ID_ROLE:
            return int(self.fields[self.id_field][self.rows[index.row()]])
        if role in self.styled_roles and index.isValid():
            return self.style_role(self.columns[index.column()], self.rows[index.row()], role)
        return None

    def display(self, column: Column, i: int) -> str:
        value = self.fields[column.field][i]
        if column.kind == "seconds":
            return "" if np.isnan(value) else f"{value:.2f}"
        if column.kind == "float":
            return "" if np.isnan(value) else f"{value:.3f}"
        if column.kind == "int":
            return str(int(value))
        if column.kind == "flag":
            return "yes" if value else ""
        return str(value)

    def style_role(self, column: Column, i: int, role):
        return None
