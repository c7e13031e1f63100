"""The settings of the selected runs side by side, only the ones that differ (Weights & Biases' diff view).

A selected group stands for its finished runs. Settings are the runs' stored, resolved specifications
with nested ones spelled out (``targets.mode``); "all settings" shows the keys they share too.
"""

from __future__ import annotations

import json

from PySide6.QtWidgets import (
    QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from trainer.results.views import differing_settings

MAX_RUNS = 12  # more columns than this are unreadable; the first ones stand for the selection


def setting_text(value) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "-"
    return json.dumps(value) if isinstance(value, (list, dict, bool)) else repr(value)


class SettingsDiff(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.specs: dict[str, dict] = {}
        self.title = QLabel("Select runs or groups to compare their settings")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # no relayout per selection
        self.all_settings = QCheckBox("all settings")
        self.all_settings.setToolTip("Show the settings the selected runs share, too")
        self.all_settings.toggled.connect(lambda _: self._fill())
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(20)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.all_settings)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table)

    def show_runs(self, specs: dict[str, dict]) -> None:
        """Run id -> stored spec, in the order the columns should have."""
        self.specs = dict(list(specs.items())[:MAX_RUNS])
        self._fill()

    def keys(self) -> list[str]:
        return [self.table.verticalHeaderItem(r).text() for r in range(self.table.rowCount())]

    def _fill(self) -> None:
        keys, flat = differing_settings(self.specs, only_differences=not self.all_settings.isChecked())
        runs = list(flat)
        self.table.clear()
        self.table.setRowCount(len(keys))
        self.table.setColumnCount(len(runs))
        self.table.setHorizontalHeaderLabels(runs)
        self.table.setVerticalHeaderLabels(keys)
        for col, run_id in enumerate(runs):
            for row, key in enumerate(keys):
                value = flat[run_id].get(key, "(not set)")
                self.table.setItem(row, col, QTableWidgetItem(setting_text(value)))
        self.table.resizeColumnsToContents()
        if not runs:
            self.title.setText("Select runs or groups to compare their settings")
        elif len(runs) == 1:
            self.title.setText(f"Settings of {runs[0]}")
        elif self.all_settings.isChecked():
            self.title.setText(f"All {len(keys)} settings of {len(runs)} runs")
        else:
            self.title.setText(f"{len(keys)} settings differ between {len(runs)} runs" if keys
                               else f"The {len(runs)} runs have the same settings")
