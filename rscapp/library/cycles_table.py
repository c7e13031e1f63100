"""The Library's cycles table: every live breathing cycle with its recording's patient, split and device."""

from __future__ import annotations

import numpy as np

from trainer.vocab import LABELS
from trainer.project.queries import CYCLE_FIELDS

from ..style import LABEL_COLORS
from .columnar import BACKGROUND, FONT, FOREGROUND, Column, ColumnarModel, brush, font


class CyclesModel(ColumnarModel):
    columns = (
        Column("Recording", "recording", width=230, sort_fields=("start",)),
        Column("Patient", "patient", width=70, sort_fields=("recording", "start")),
        Column("Split", "split", width=60, sort_fields=("recording", "start")),
        Column("Device", "device", width=90, sort_fields=("recording", "start")),
        Column("Start (s)", "start", kind="float", width=75, sort_fields=("recording",)),
        Column("End (s)", "end", kind="float", width=75, sort_fields=("recording",)),
        Column("Duration (s)", "duration", kind="float", width=100, sort_fields=("recording", "start")),
        Column("Label", "label", width=75, sort_fields=("recording", "start")),
        Column("Origin", "origin", width=65, sort_fields=("recording", "start"), tooltip="dataset, user or model"),
        Column("Edited", "edited", kind="flag", width=55, sort_fields=("recording", "start")),
    )
    _FIELDS = CYCLE_FIELDS
    _KINDS = {"id": "int", "recording_id": "int", "start": "float", "end": "float", "label": "int", "edited": "int"}

    def arrays_from_rows(self, rows):
        arrays = super().arrays_from_rows(rows)
        arrays["duration"] = arrays["end"] - arrays["start"]
        # Lower-cased text searched by the filter box: recording name, patient, device.
        search = np.empty(len(arrays["id"]), dtype=object)
        search[:] = [f"{a} {b} {c}".lower() for a, b, c in zip(arrays["recording"], arrays["patient"], arrays["device"])]
        arrays["search"] = search
        return arrays

    def display(self, column, i):
        if column.field == "label":
            return LABELS[int(self.fields["label"][i])]
        return super().display(column, i)

    styled_roles = frozenset({BACKGROUND, FOREGROUND, FONT})

    def style_role(self, column, i, role):
        field = column.field
        if field == "label":
            if role == BACKGROUND:
                return brush(LABEL_COLORS[LABELS[int(self.fields["label"][i])]])
            if role == FOREGROUND:
                return brush("#ffffff")
        elif role == FONT and field in ("edited", "origin") and self.fields["edited"][i]:
            return font(italic=True)
        return None
