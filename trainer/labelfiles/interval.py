"""What every label-file format shares: the interval read from a line, the error that names file and line,
and the values a line holds (times, 0/1 flags, label names).

Errors name the file and line, the way a compiler does, because users fix these files by hand. A
parser raises the first bad line's :class:`LabelError`, or, given ``on_error``, hands each one to it
and goes on with the next line (the importers report every bad line and import the rest).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Callable, Iterable

from ..vocab import LABELS, label_of, parse_label


def printable(text: str | os.PathLike) -> str:
    """Text (a path, or a message quoting a file) as one printable line that can also be stored.

    Bytes of a file name that are not UTF-8, which Python keeps as lone surrogates, are written as
    ``\\xe9``, and control characters and line breaks (a file name may hold them, a hostile file surely
    does) as their escapes, so a message about a file stays one line.
    """
    text = os.fspath(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class LabelError(Exception):
    """A label file that cannot be used; ``file`` and ``line`` say where (line is 1-based, or None)."""

    def __init__(self, file: str | os.PathLike | None, line: int | None, message: str):
        self.file = str(file) if file is not None else None
        self.line = line
        self.message = printable(message)
        where = printable(self.file) if self.file else "<labels>"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {self.message}")


# Receives a bad line's error instead of it being raised; the parser then skips that line.
ErrorHandler = Callable[[LabelError], None]


def emit(error: LabelError, on_error: ErrorHandler | None) -> None:
    """Raise ``error``, or hand it to ``on_error`` when the caller collects them."""
    if on_error is None:
        raise error
    on_error(error)


@dataclass
class Interval:
    """One labelled cycle as read from (or written to) a file."""

    start: float
    end: float
    crackle: int = 0
    wheeze: int = 0
    line: int | None = None
    file: str | None = None  # the recording a CSV row names
    split: str | None = None  # and what the row says of that recording, where it says it
    patient: str | None = None

    @property
    def label(self) -> int:
        return label_of(self.crackle, self.wheeze)

    @property
    def label_name(self) -> str:
        return LABELS[self.label]


def label_at(text: str, source, line) -> tuple[int, int]:
    """(crackle, wheeze) of a label written on a line of a file; an unknown one is a LabelError there."""
    try:
        return parse_label(text)
    except ValueError:
        raise LabelError(
            source, line, f"unknown label {text.strip()!r} (expected normal, crackle, wheeze, both or 0-3)"
        ) from None


# Decimal notation in ASCII only: Python's float() also takes "1_5" (15, where 1.5 was meant), digits of
# other scripts and "infinity", none of which a label file should turn into a time without a word.
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def is_decimal(text: str) -> bool:
    """Whether ``text`` is a number in plain decimal notation (see :data:`_DECIMAL`)."""
    return _DECIMAL.fullmatch(text.strip()) is not None


def number_at(text: str, what: str, source, line) -> float:
    value = text.strip()
    if not is_decimal(value):
        hint = " (a decimal comma? write 1.5, not 1,5)" if re.fullmatch(r"[+-]?\d+,\d+", value) else ""
        raise LabelError(source, line, f"{what} {value[:40]!r} is not a number{hint}")
    number = float(value)
    if not math.isfinite(number):
        raise LabelError(source, line, f"{what} {value[:40]!r} is beyond the range of a number")
    return number


def flag_at(text: str, what: str, source, line) -> int:
    """0 or 1; written as a number ("1", "1.0"), since spreadsheets write flags either way."""
    value = text.strip()
    number = float(value) if is_decimal(value) else None
    if number not in (0.0, 1.0):
        raise LabelError(source, line, f"{what} must be 0 or 1, not {value[:40]!r}")
    return int(number)


def format_seconds(seconds: float) -> str:
    """Seconds with up to six decimals and no trailing zeros (what ICBHI and Audacity files look like)."""
    text = f"{seconds:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def in_order(cycles: Iterable, by_file: bool = False) -> list:
    items = list(cycles)
    if by_file:
        return sorted(items, key=lambda c: (c.file or "", c.start, c.end))
    return sorted(items, key=lambda c: (c.start, c.end))
