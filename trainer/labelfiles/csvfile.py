"""CSV label tables: one row per cycle, and one file may hold many recordings.

Columns (any order, case ignored): ``start``, ``end``, and ``label`` (normal/crackle/wheeze/both or
0-3) or ``crackle`` and ``wheeze`` (both may be given; they must agree), ``file`` naming the
recording, and ``split`` and ``patient`` for the folder importer. The one reader of these tables:
the folder importer's ``--labels`` and label import both call :func:`parse_csv`.
"""

from __future__ import annotations

import csv
import io
from typing import Iterable

from ..vocab import LABELS, SPLITS
from .interval import ErrorHandler, Interval, LabelError, emit, flag_at, format_seconds, in_order, label_at, number_at

CSV_COLUMNS = ("file", "start", "end", "label", "crackle", "wheeze")


def parse_csv(text: str, source=None, on_error: ErrorHandler | None = None, need_file: bool = False) -> list[Interval]:
    """The rows of a label table; ``need_file``: every row must name its recording.

    A bad row goes to ``on_error`` (or raises); a header without the needed columns always raises,
    as nothing after it can be read.
    """
    reader = csv.reader(io.StringIO(text))
    header = None
    out = []
    while True:
        before = reader.line_num
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a NUL byte, or a field beyond csv's size limit
            error = LabelError(source, reader.line_num or 1, f"not a CSV row ({exc})")
            if header is None or reader.line_num == before:
                raise error from None
            emit(error, on_error)
            continue
        number = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            _check_header(header, need_file, source, number)
            continue
        try:
            out.append(_read_row(header, row, need_file, source, number))
        except LabelError as error:
            emit(error, on_error)
    if header is None:
        raise LabelError(source, None, f"empty CSV (expected a header {','.join(CSV_COLUMNS)})")
    return out


def _check_header(header: list[str], need_file: bool, source, line: int) -> None:
    required = ["file", "start", "end"] if need_file else ["start", "end"]
    missing = [name for name in required if name not in header]
    if "label" not in header and not ("crackle" in header and "wheeze" in header):
        missing.append("label")
    if missing:
        found = ", ".join(name for name in header if name) or "nothing"
        hint = next(
            (f"; its cells are separated by {word}, not commas" for mark, word in ((";", "semicolons"), ("\t", "tabs"))
             if len(header) == 1 and mark in header[0]),
            "",
        )
        raise LabelError(
            source, line,
            f"header lacks {', '.join(missing)} (the header must have {','.join(required)} and label or "
            f"crackle,wheeze; found: {found[:200]}){hint}",  # LabelError escapes what is not printable
        )
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise LabelError(
            source, line, f"the header names {', '.join(repeated)} more than once: which one holds the value?"
        )


def _read_row(header: list[str], row: list[str], need_file: bool, source, number: int) -> Interval:
    if len(row) != len(header):
        raise LabelError(source, number, f"expected {len(header)} fields as in the header, found {len(row)}")
    cells = {name: value.strip() for name, value in zip(header, row)}
    start = number_at(cells["start"], "start", source, number)
    end = number_at(cells["end"], "end", source, number)
    if "crackle" in cells and "wheeze" in cells and (cells["crackle"] or cells["wheeze"]):
        crackle = flag_at(cells["crackle"], "crackle", source, number)
        wheeze = flag_at(cells["wheeze"], "wheeze", source, number)
        if cells.get("label"):
            named = label_at(cells["label"], source, number)
            if named != (crackle, wheeze):
                raise LabelError(
                    source, number, f"label {cells['label']!r} disagrees with crackle={crackle}, wheeze={wheeze}"
                )
    else:
        crackle, wheeze = label_at(cells.get("label", ""), source, number)
    file = cells.get("file") or None
    if need_file and file is None:
        raise LabelError(source, number, "empty file column")
    split = cells.get("split", "").lower() or None
    if split is not None and split not in SPLITS:
        raise LabelError(source, number, f"split must be train or test, got {cells['split']!r}")
    return Interval(start, end, crackle, wheeze, number, file, split, cells.get("patient") or None)


def format_csv(cycles: Iterable, file: str | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in in_order(cycles, by_file=True):
        writer.writerow(
            [c.file or file or "", format_seconds(c.start), format_seconds(c.end), LABELS[c.label], c.crackle, c.wheeze]
        )
    return out.getvalue()
