"""The Library's header: the project's name and size, the missing-audio banner, and the table of cycles
per split and class (``trainer.project.queries.library_counts``)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from trainer.vocab import LABELS

from ..style import LABEL_COLORS


class CountsTable(QTableWidget):
    """Cycles per split (rows) and class (columns), coloured like the labels everywhere else."""

    def __init__(self, parent=None):
        super().__init__(0, len(LABELS) + 1, parent)
        self.setHorizontalHeaderLabels([*(name.capitalize() for name in LABELS), "Total"])
        for col, name in enumerate(LABELS):
            self.horizontalHeaderItem(col).setForeground(QBrush(QColor(LABEL_COLORS[name])))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setDefaultSectionSize(20)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.horizontalHeader().setDefaultSectionSize(70)
        self.verticalHeader().setMinimumWidth(50)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedWidth(70 * (len(LABELS) + 1) + 50 + 4)
        self.counts: dict = {}

    def set_counts(self, counts: dict | None) -> None:
        self.counts = counts or {}
        per_split = (counts or {}).get("cycles", {})
        splits = [s for s in per_split if s != "all"] + (["all"] if per_split else [])
        if self.rowCount() != len(splits):
            self.setRowCount(len(splits))
        self.setVerticalHeaderLabels([s.capitalize() if s != "all" else "All" for s in splits])
        for row, split in enumerate(splits):
            for col, name in enumerate((*LABELS, "total")):
                text = str(per_split[split][name])
                item = self.item(row, col)
                if item is None:
                    item = QTableWidgetItem(text)
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    self.setItem(row, col, item)
                elif item.text() != text:
                    item.setText(text)
                bold = split == "all" or name == "total"
                if item.font().bold() != bold:
                    bold_font = item.font()
                    bold_font.setBold(bold)
                    item.setFont(bold_font)
        height = self.horizontalHeader().height() + 20 * max(1, len(splits)) + 4
        self.setFixedHeight(height)


class LibraryHeader(QWidget):
    """Title, missing-audio banner and counts table above the Library's tables."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel()
        self.title.setObjectName("libraryTitle")
        self.banner = QLabel()
        self.banner.setObjectName("audioBanner")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.counts_table = CountsTable()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        left = QVBoxLayout()
        left.addWidget(self.title)
        left.addWidget(self.banner)
        left.addStretch(1)
        row.addLayout(left, 1)
        row.addWidget(self.counts_table)

    def show_counts(self, path: Path | None, counts: dict) -> None:
        if path is None:
            self.title.setText("")
            self.counts_table.set_counts(None)
            self.counts_table.setVisible(False)
            self.banner.setVisible(False)
            return
        self.title.setText(
            f"<h3>{path.name}</h3><p>{counts['recordings']} recordings, "
            f"{counts['cycles']['all']['total']} cycles &nbsp;&middot;&nbsp; "
            f"<span style='color:gray'>{path.parent}</span></p>"
        )
        self.counts_table.set_counts(counts)
        self.counts_table.setVisible(True)
        problems = counts["audio_problems"]
        if problems:
            detail = ", ".join(f"{n} {status}" for status, n in sorted(counts["audio"].items()) if status != "ok")
            self.banner.setText(
                f"<b>{problems} recording{'s' if problems != 1 else ''} without usable audio</b> ({detail}). "
                "They are highlighted below: right-click one and choose <i>Locate audio file...</i>"
            )
        self.banner.setVisible(bool(problems))
