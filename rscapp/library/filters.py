"""The filter bars above the Library's tables: each turns its widgets into a boolean mask over a table's
arrays, and its state into the dict the window saves between runs (keys ``rec_*`` and ``cyc_*``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QWidget

from trainer.vocab import LABELS, ORIGINS

from .columnar import ColumnarModel

ALL = "All"


def combo(items: Sequence[str], tooltip: str) -> QComboBox:
    box = QComboBox()
    box.addItems(list(items))
    box.setToolTip(tooltip)
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
    return box


def set_combo_items(box: QComboBox, items: Sequence[str]) -> None:
    """New choices, keeping the current one where it is still offered (no change signal)."""
    current = box.currentText()
    box.blockSignals(True)
    box.clear()
    box.addItems(list(items))
    index = box.findText(current)
    box.setCurrentIndex(index if index >= 0 else 0)
    box.blockSignals(False)


def text_mask(search: np.ndarray, text: str, base: np.ndarray | None = None) -> np.ndarray:
    """Rows whose search text holds every word of ``text`` (only rows still in ``base`` are scanned)."""
    words = text.lower().split()
    mask = np.ones(len(search), dtype=bool) if base is None else base.copy()
    if not words:
        return mask
    candidates = np.nonzero(mask)[0]
    hits = [i for i in candidates.tolist() if all(w in search[i] for w in words)]
    mask[:] = False
    mask[hits] = True
    return mask


class FilterBar(QWidget):
    """A row of filter widgets with a title; ``changed`` fires on every edit of any of them."""

    changed = Signal()
    prefix = ""  # of the saved state's keys

    def __init__(self, title: str, placeholder: str, parent=None):
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText(placeholder)
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.changed)
        self.shown = QLabel()  # "12 of 24"
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.addWidget(QLabel(f"<b>{title}</b>"))
        self.row.addWidget(self.search, 2)
        self.boxes: dict[str, QComboBox] = {}
        self.checks: dict[str, QCheckBox] = {}

    def add_combo(self, name: str, title: str, items: Sequence[str], tooltip: str) -> QComboBox:
        box = combo(items, tooltip)
        box.currentIndexChanged.connect(self.changed)
        self.boxes[name] = box
        self.row.addWidget(QLabel(title))
        self.row.addWidget(box)
        return box

    def add_check(self, name: str, title: str) -> QCheckBox:
        check = QCheckBox(title)
        check.toggled.connect(self.changed)
        self.checks[name] = check
        self.row.addWidget(check)
        return check

    def chosen(self, name: str) -> str | None:
        """The chosen value of a combo box, or None while it says All."""
        box = self.boxes[name]
        return box.currentText() if box.currentIndex() > 0 else None

    def show_count(self, model: ColumnarModel) -> None:
        self.shown.setText(f"{model.rowCount()} of {model.size}")

    def set_choices(self, name: str, values: Sequence[str]) -> None:
        set_combo_items(self.boxes[name], [ALL, *values])

    def state(self) -> dict:
        p = self.prefix
        return ({f"{p}search": self.search.text()}
                | {f"{p}{name}": box.currentText() for name, box in self.boxes.items()}
                | {f"{p}{name}": check.isChecked() for name, check in self.checks.items()})

    def set_state(self, state: dict) -> None:
        """Show a saved state without a change signal per widget (the caller filters once afterwards)."""
        widgets = [self.search, *self.boxes.values(), *self.checks.values()]
        for widget in widgets:
            widget.blockSignals(True)
        try:
            p = self.prefix
            self.search.setText(str(state.get(f"{p}search", "")))
            for name, box in self.boxes.items():
                value = state.get(f"{p}{name}")
                if value and box.findText(str(value)) < 0:
                    box.addItem(str(value))  # a device of a project not open yet: keep the choice
                index = box.findText(str(value)) if value else 0
                box.setCurrentIndex(max(0, index))
            for name, check in self.checks.items():
                check.setChecked(bool(state.get(f"{p}{name}", False)))
        finally:
            for widget in widgets:
                widget.blockSignals(False)


class RecordingFilters(FilterBar):
    prefix = "rec_"

    def __init__(self, parent=None):
        super().__init__("Recordings", "Search recordings, patients, devices", parent)
        self.split = self.add_combo("split", "Split", [ALL], "Split")
        self.device = self.add_combo("device", "Device", [ALL], "Device")
        self.audio = self.add_combo("audio", "Audio", [ALL, "ok", "problems"],
                                    "Audio status (problems: missing, changed or unreadable)")

    def mask(self, model: ColumnarModel) -> np.ndarray | None:
        if not model.size:
            return None
        f = model.fields
        mask = np.ones(model.size, dtype=bool)
        for name in ("split", "device"):
            if (value := self.chosen(name)) is not None:
                mask &= f[name] == value
        audio = self.chosen("audio")
        if audio == "ok":
            mask &= f["audio_status"] == "ok"
        elif audio == "problems":
            mask &= f["audio_status"] != "ok"
        text = self.search.text().strip()
        return text_mask(f["search"], text, mask) if text else mask


class CycleFilters(FilterBar):
    prefix = "cyc_"

    def __init__(self, parent=None):
        super().__init__("Cycles", "Search cycles by recording, patient, device", parent)
        self.label = self.add_combo("label", "Label", [ALL, *LABELS], "Label")
        self.split = self.add_combo("split", "Split", [ALL], "Split")
        self.device = self.add_combo("device", "Device", [ALL], "Device")
        self.origin = self.add_combo("origin", "Origin", [ALL, *ORIGINS], "Origin of the label")
        self.edited = self.add_check("edited", "Edited only")

    def mask(self, model: ColumnarModel) -> np.ndarray | None:
        if not model.size:
            return None
        f = model.fields
        mask = np.ones(model.size, dtype=bool)
        if (label := self.chosen("label")) is not None:
            mask &= f["label"] == LABELS.index(label)
        for name in ("split", "device", "origin"):
            if (value := self.chosen(name)) is not None:
                mask &= f[name] == value
        if self.edited.isChecked():
            mask &= f["edited"] != 0
        text = self.search.text().strip()
        return text_mask(f["search"], text, mask) if text else mask
