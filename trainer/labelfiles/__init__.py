"""Breathing-cycle labels to and from the files other tools read: ICBHI txt, CSV, Audacity labels, Praat TextGrid.

One module per format (``icbhi``, ``csvfile``, ``audacity``, ``textgrid``), each with its parser and
its formatter; ``formats`` picks one by name or by a file's look, ``interval`` holds what they share,
and ``apply`` exports a project's cycles and imports a file's into it. Qt-free: the app's Listen view,
the importers and scripts use the same functions.

- ``icbhi``: ``start<TAB>end<TAB>crackle<TAB>wheeze`` per line (the ICBHI 2017 annotation files).
- ``csv``: header ``file,start,end,label,crackle,wheeze``; one file may hold many recordings.
- ``audacity``: ``start<TAB>end<TAB>label`` (Audacity's label track export, spectral lines skipped).
- ``textgrid``: a Praat TextGrid with an IntervalTier named ``cycles``; empty intervals are the gaps
  between cycles.
"""

from .apply import MODES, LabelImport, apply_labels, cycles_of, export_labels, import_labels, validate
from .audacity import format_audacity, parse_audacity
from .csvfile import CSV_COLUMNS, format_csv, parse_csv
from .formats import (
    EXTENSIONS,
    FORMAT_NAMES,
    FORMATS,
    check_format,
    detect_format,
    format_labels,
    parse_labels,
    read_labels,
    read_text,
)
from .icbhi import format_icbhi, parse_icbhi
from .interval import ErrorHandler, Interval, LabelError
from .textgrid import TIER_NAME, format_textgrid, parse_textgrid

__all__ = [
    "CSV_COLUMNS", "EXTENSIONS", "FORMATS", "FORMAT_NAMES", "MODES", "TIER_NAME",
    "ErrorHandler", "Interval", "LabelError", "LabelImport",
    "apply_labels", "check_format", "cycles_of", "detect_format", "export_labels", "import_labels", "validate",
    "format_audacity", "format_csv", "format_icbhi", "format_labels", "format_textgrid",
    "parse_audacity", "parse_csv", "parse_icbhi", "parse_labels", "parse_textgrid",
    "read_labels", "read_text",
]
