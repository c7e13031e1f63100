"""The four label formats by name: telling them apart, reading a file's text, and parsing or writing any of them."""

from __future__ import annotations

import os
import stat
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


# Label, split and metadata files are small (the largest, a CSV of a whole ICBHI project, is 300 KB):
# anything far larger is another kind of file, given by mistake, and is refused before it is read.
TEXT_FILE_LIMIT = 64 << 20
_BYTE_ORDER_MARKS = (  # longest first: a UTF-32 mark begins like a UTF-16 one
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
    (b"\xff\xfe", "utf-16-le", "UTF-16"),
    (b"\xfe\xff", "utf-16-be", "UTF-16"),
    (b"\xef\xbb\xbf", "utf-8", "UTF-8"),
)


def read_text(path: str | os.PathLike) -> str:
    """A text file's contents; Praat writes UTF-16 with a byte-order mark, everyone else UTF-8 (or Latin-1).

    The importers read their split, demographics and annotation files through this too. A file that
    cannot be read, or whose byte-order mark promises an encoding its bytes do not follow, is a
    LabelError naming it.
    """
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a pipe or a device would never end, a folder cannot be read
            raise LabelError(path, None, "not a regular file" + (" (a folder)" if stat.S_ISDIR(info.st_mode) else ""))
        size = info.st_size
        if size > TEXT_FILE_LIMIT:
            raise LabelError(path, None, f"{size / 2**20:.0f} MiB is far too large for a label or metadata file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise LabelError(path, None, "file not found") from None
    except OSError as exc:
        raise LabelError(path, None, f"cannot read ({exc.strerror or exc})") from None
    for mark, codec, name in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            try:
                return data[len(mark):].decode(codec)
            except UnicodeDecodeError as exc:
                raise LabelError(
                    path, None, f"starts with a {name} byte-order mark but byte {exc.start + len(mark)} is not {name} "
                    "(a truncated or mislabelled file)",
                ) from None
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
        if raw.strip() and not raw.startswith(("\\", "#")):  # Audacity's frequency lines, ICBHI comments
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
