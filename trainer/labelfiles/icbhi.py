"""ICBHI 2017 annotation files: ``start<TAB>end<TAB>crackle<TAB>wheeze`` per line (tabs or spaces).

The one reader of these files: the ICBHI and folder importers (sidecar ``.txt`` files) and label
import all call :func:`parse_icbhi`.
"""

from __future__ import annotations

from typing import Iterable

from .interval import ErrorHandler, Interval, LabelError, emit, flag_at, format_seconds, in_order, number_at


def parse_icbhi(text: str, source=None, on_error: ErrorHandler | None = None) -> list[Interval]:
    """The intervals of an annotation file; blank lines and ``#`` comments are skipped."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            if len(parts) != 4:
                raise LabelError(
                    source, number, f"expected 4 columns (start end crackle wheeze), found {len(parts)}: {line[:60]!r}"
                )
            start = number_at(parts[0], "start", source, number)
            end = number_at(parts[1], "end", source, number)
            crackle = flag_at(parts[2], "crackle", source, number)
            wheeze = flag_at(parts[3], "wheeze", source, number)
        except LabelError as error:
            emit(error, on_error)
            continue
        out.append(Interval(start, end, crackle, wheeze, number))
    return out


def format_icbhi(cycles: Iterable) -> str:
    return "".join(
        f"{format_seconds(c.start)}\t{format_seconds(c.end)}\t{c.crackle}\t{c.wheeze}\n" for c in in_order(cycles)
    )
