"""The Library's recordings table: one row per recording with its cycles counted per class and its audio status."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from trainer.project.queries import RECORDING_FIELDS

from ..style import AUDIO_STATUS_COLORS, LABEL_COLORS
from .columnar import BACKGROUND, FONT, FOREGROUND, TOOLTIP, Column, ColumnarModel, brush, font


class RecordingsModel(ColumnarModel):
    columns = (
        Column("Recording", "name", width=230),
        Column("Patient", "patient", width=70, sort_fields=("name",)),
        Column("Device", "device", width=90, sort_fields=("name",)),
        Column("Location", "location", width=70, sort_fields=("name",), tooltip="Chest location"),
        Column("Split", "split", width=60, sort_fields=("name",)),
        Column("Duration (s)", "duration", kind="seconds", width=100, sort_fields=("name",)),
        Column("Cycles", "cycles", kind="int", width=60, sort_fields=("name",)),
        Column("Normal", "normal", kind="int", width=68, sort_fields=("name",)),
        Column("Crackle", "crackle", kind="int", width=68, sort_fields=("name",)),
        Column("Wheeze", "wheeze", kind="int", width=68, sort_fields=("name",)),
        Column("Both", "both", kind="int", width=68, sort_fields=("name",)),
        Column("Edited", "edited", kind="int", width=68, sort_fields=("name",), tooltip="Cycles edited by a user"),
        Column("Audio", "audio_status", width=80, sort_fields=("name",), tooltip="ok, missing, changed or unreadable"),
    )
    _FIELDS = RECORDING_FIELDS
    _KINDS = {"id": "int", "duration": "float", "cycles": "int", "normal": "int", "crackle": "int",
              "wheeze": "int", "both": "int", "edited": "int"}

    def arrays_from_rows(self, rows):
        arrays = super().arrays_from_rows(rows)
        # Lower-cased text searched by the filter box: name, patient, device, chest location.
        search = np.empty(len(arrays["id"]), dtype=object)
        search[:] = [
            f"{a} {b} {c} {d}".lower()
            for a, b, c, d in zip(arrays["name"], arrays["patient"], arrays["device"], arrays["location"])
        ]
        arrays["search"] = search
        return arrays

    def header_role(self, column, role):
        if role == Qt.ItemDataRole.ForegroundRole and column.field in LABEL_COLORS:
            return brush(LABEL_COLORS[column.field])
        return None

    styled_roles = frozenset({BACKGROUND, FOREGROUND, TOOLTIP, FONT})

    def style_role(self, column, i, role):
        status = self.fields["audio_status"][i]
        if role == BACKGROUND:
            return brush(AUDIO_STATUS_COLORS[status]) if status in AUDIO_STATUS_COLORS else None
        if role == FOREGROUND:
            if column.field in LABEL_COLORS and self.fields[column.field][i]:
                return brush(LABEL_COLORS[column.field])
            return None
        if role == TOOLTIP and status != "ok":
            return f"Audio {status}: {self.fields['path'][i] or 'no path'} (right-click > Locate audio file...)"
        if role == FONT and column.field == "audio_status" and status != "ok":
            return font(bold=True)
        return None
