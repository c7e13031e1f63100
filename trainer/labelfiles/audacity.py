"""Audacity label tracks: ``start<TAB>end<TAB>label`` per line (its "Export Labels" format)."""

from __future__ import annotations

from typing import Iterable

from ..vocab import LABELS
from .interval import ErrorHandler, Interval, LabelError, emit, format_seconds, in_order, label_at, number_at


def parse_audacity(text: str, source=None, on_error: ErrorHandler | None = None) -> list[Interval]:
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.startswith("\\"):
            continue  # Audacity writes a "\\t<low>\t<high>" line after labels with a frequency range
        parts = raw.rstrip("\r\n").split("\t")
        if len(parts) < 2:
            parts = raw.split()
        try:
            if len(parts) < 2:
                raise LabelError(source, number, f"expected start<TAB>end<TAB>label, found {raw.strip()[:60]!r}")
            start = number_at(parts[0], "start", source, number)
            end = number_at(parts[1], "end", source, number)
            text_label = "\t".join(parts[2:]).strip() if len(parts) > 2 else ""
            crackle, wheeze = label_at(text_label, source, number)
        except LabelError as error:
            emit(error, on_error)
            continue
        out.append(Interval(start, end, crackle, wheeze, number))
    return out


def format_audacity(cycles: Iterable) -> str:
    return "".join(
        f"{format_seconds(c.start)}\t{format_seconds(c.end)}\t{LABELS[c.label]}\n" for c in in_order(cycles)
    )
