"""The four label formats by name: telling them apart, reading a file's text, and parsing or writing any of them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .audacity import format_audacity, parse_audacity
from .csvfile import format_csv, parse_csv
from .icbhi import format_icbhi, parse_icbhi
from .interval import ErrorHandler, Interval, LabelError
from .textgrid import format_textgrid, parse_textgrid

FORMATS = ("icbhi", "csv", "audacity", "textgrid")
FORMAT_NAMES = {
    "icbhi": "ICBHI annotation (*.txt)",
    "csv": "CSV table (*.csv)",
    "audacity": "Audacity labels (*.txt)",
    "textgrid": "Praat TextGrid (*.TextGrid)",
}
EXTENSIONS = {"icbhi": ".txt", "csv": ".csv", "audacity": ".txt", "textgrid": ".TextGrid"}
_PARSERS = {"icbhi": parse_icbhi, "audacity": parse_audacity, "csv": parse_csv, "textgrid": parse_textgrid}


def check_format(fmt: str) -> str:
    key = (fmt or "").lower()
    if key == "praat":
        key = "textgrid"
    if key not in FORMATS:
        raise ValueError(f"unknown label format {fmt!r} (expected one of {', '.join(FORMATS)})")
    return key


def read_text(path: str | os.PathLike) -> str:
    """A text file's contents; Praat writes UTF-16 with a byte-order mark, everyone else UTF-8 (or Latin-1).

    The importers read their split, demographics and annotation files through this too.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LabelError(path, None, "file not found") from None
    except OSError as exc:
        raise LabelError(path, None, f"cannot read ({exc.strerror or exc})") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def detect_format(path: str | os.PathLike, text: str | None = None) -> str:
    """Format from the extension; a .txt is ICBHI when its first line has four columns of numbers, else Audacity."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".textgrid":
        return "textgrid"
    if text is None:
        text = read_text(path)
    if text.lstrip().startswith('File type = "ooTextFile'):
        return "textgrid"
    for raw in text.splitlines():
        if raw.strip() and not raw.startswith("\\"):
            parts = raw.split()
            if len(parts) == 4 and all(p in ("0", "1") for p in parts[2:]):
                return "icbhi"
            return "audacity"
    return "icbhi"


def parse_labels(text: str, fmt: str, source=None, on_error: ErrorHandler | None = None) -> list[Interval]:
    return _PARSERS[check_format(fmt)](text, source, on_error)


def read_labels(path: str | os.PathLike, fmt: str | None = None) -> tuple[str, list[Interval]]:
    """(format, intervals) of a label file; the first bad line raises."""
    text = read_text(path)
    fmt = fmt or detect_format(path, text)
    return fmt, parse_labels(text, fmt, source=str(path))


def format_labels(fmt: str, cycles: Sequence, file: str | None = None, duration: float | None = None) -> str:
    fmt = check_format(fmt)
    if fmt == "icbhi":
        return format_icbhi(cycles)
    if fmt == "audacity":
        return format_audacity(cycles)
    if fmt == "csv":
        return format_csv(cycles, file)
    return format_textgrid(cycles, duration)
