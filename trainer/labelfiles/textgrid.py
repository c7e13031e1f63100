"""Praat TextGrids: an IntervalTier named ``cycles``, whose empty intervals are the gaps between cycles.

Both the long ("normal") and the short text formats are read; long is written.
"""

from __future__ import annotations

import math
import re
from typing import Iterable

from ..vocab import LABELS
from .interval import ErrorHandler, Interval, LabelError, emit, format_seconds, in_order, label_at

TIER_NAME = "cycles"


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def format_textgrid(cycles: Iterable, duration: float | None = None) -> str:
    """Long-format TextGrid, one IntervalTier ``cycles``; gaps (and the span before/after) as empty intervals."""
    cycles = in_order(cycles)
    xmax = max([duration or 0.0] + [c.end for c in cycles])
    intervals: list[tuple[float, float, str]] = []
    cursor = 0.0
    for c in cycles:
        # Praat's intervals tile their tier: a cycle that overlaps its neighbour (within the cycle
        # tolerance) starts where that one ends, and a gap too short to print is no gap.
        start = max(c.start, cursor)
        if format_seconds(start) != format_seconds(cursor):
            intervals.append((cursor, start, ""))
        intervals.append((start, c.end, LABELS[c.label]))
        cursor = c.end
    if format_seconds(xmax) != format_seconds(cursor) or not intervals:
        intervals.append((cursor, xmax, ""))
    lines = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        "xmin = 0 ",
        f"xmax = {format_seconds(xmax)} ",
        "tiers? <exists> ",
        "size = 1 ",
        "item []: ",
        "    item [1]:",
        '        class = "IntervalTier" ',
        f"        name = {_quote(TIER_NAME)} ",
        "        xmin = 0 ",
        f"        xmax = {format_seconds(xmax)} ",
        f"        intervals: size = {len(intervals)} ",
    ]
    for index, (start, end, text) in enumerate(intervals, 1):
        lines += [
            f"        intervals [{index}]:",
            f"            xmin = {format_seconds(start)} ",
            f"            xmax = {format_seconds(end)} ",
            f"            text = {_quote(text)} ",
        ]
    return "\n".join(lines) + "\n"


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TOKEN = re.compile(
    r'(?P<string>"(?:[^"]|"")*")|(?P<flag><[a-z]+>)|(?P<skip>\[[^\]]*\]|![^\n]*)'
    rf"|(?P<number>{_NUMBER})|(?P<other>[^\s\"<\[!]+)|(?P<space>\s+)",
    re.ASCII,  # digits of other scripts are no number here, as in the other formats
)


# The bare words of the long format (xmin, intervals:, tiers?, =), which carry no value.
_WORD = re.compile(r"[A-Za-z][A-Za-z?]*:?|=|:")


def _tokens(text: str, source) -> list[tuple[str, object, int]]:
    """Values of a TextGrid in order; the long format's ``name =`` words are dropped, so both formats read alike."""
    tokens = []
    line = 1
    pos = 0
    words: list[str] = []  # the last two bare words, to catch `name = <not a value>`
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise LabelError(source, line, f"unexpected text {text[pos:pos + 20]!r}")
        kind = match.lastgroup
        value = match.group()
        if kind == "string":
            tokens.append(("string", value[1:-1].replace('""', '"'), line))
        elif kind == "number" or (kind == "other" and re.fullmatch(_NUMBER, value, re.ASCII)):
            number = float(value)
            if not math.isfinite(number):
                raise LabelError(source, line, f"{value[:40]} is beyond the range of a number")
            tokens.append(("number", number, line))
        elif kind == "flag":
            tokens.append(("flag", value, line))
        elif kind == "other":
            if words and words[-1] == "=" and value != "=":
                name = words[-2] if len(words) > 1 else "value"
                raise LabelError(source, line, f"{name} = {value!r} is neither a number nor quoted text")
            if not _WORD.fullmatch(value):  # "1,5" would read as 1 and a dropped ",5"
                raise LabelError(source, line, f"unexpected text {value[:20]!r}")
            words = (words + [value])[-2:]
        if kind in ("string", "number", "flag"):
            words = []
        line += value.count("\n")
        pos = match.end()
    return tokens


def parse_textgrid(
    text: str, source=None, on_error: ErrorHandler | None = None, tier: str | None = TIER_NAME
) -> list[Interval]:
    """Cycles from the IntervalTier named ``tier`` (or the only/first IntervalTier); empty intervals are gaps.

    Only an interval's unknown label goes to ``on_error``; a file whose structure is broken always raises,
    as does one with values left over after the tiers its sizes announce.
    """
    tokens = _tokens(text, source)
    pos = 0

    def take_count(what: str, values_each: int) -> int:
        """A tier or interval count: a whole number, and no more than the values left in the file can hold."""
        count, line = take("number", what)
        if count < 0 or count != int(count):
            raise LabelError(source, line, f"{what} is {count:g}: it must be a whole number, 0 or more")
        left = len(tokens) - pos
        if count * values_each > left:
            raise LabelError(
                source, line, f"{what} is {count:g}, but only {left} values follow (a truncated file, or a wrong count)"
            )
        return int(count)

    def take(kind: str, what: str):
        nonlocal pos
        if pos >= len(tokens):
            last = tokens[-1][2] if tokens else None
            raise LabelError(source, last, f"TextGrid ends early (expected {what})")
        got_kind, value, line = tokens[pos]
        if got_kind != kind:
            raise LabelError(source, line, f"expected {what}, found {value!r}")
        pos += 1
        return value, line

    file_type, line = take("string", 'File type = "ooTextFile"')
    if file_type not in ("ooTextFile", "ooTextFile short"):
        raise LabelError(source, line, f"not a Praat text file (File type is {file_type[:40]!r})")
    object_class, line = take("string", 'Object class = "TextGrid"')
    if object_class != "TextGrid":
        raise LabelError(source, line, f"not a TextGrid (Object class is {object_class[:40]!r})")
    take("number", "xmin")
    take("number", "xmax")
    flag, line = take("flag", "tiers? <exists>")
    if flag != "<exists>":
        raise LabelError(source, line, "the TextGrid has no tiers")
    count = take_count("the number of tiers", 5)
    tiers: list[tuple[str, str, list[Interval]]] = []
    for _ in range(count):
        tier_class, class_line = take("string", "a tier class")
        name, _ = take("string", "a tier name")
        take("number", "tier xmin")
        take("number", "tier xmax")
        n = take_count("the number of intervals" if tier_class == "IntervalTier" else "the number of points",
                       3 if tier_class == "IntervalTier" else 2)
        items = []
        for _ in range(n):
            if tier_class == "IntervalTier":
                start, item_line = take("number", "interval xmin")
                end, _ = take("number", "interval xmax")
                label_text, _ = take("string", "interval text")
                if not label_text.strip():
                    continue
                try:
                    crackle, wheeze = label_at(label_text, source, item_line)
                except LabelError as error:
                    emit(error, on_error)
                    continue
                items.append(Interval(float(start), float(end), crackle, wheeze, item_line))
            elif tier_class == "TextTier":
                take("number", "point time")
                take("string", "point mark")
            else:
                raise LabelError(source, class_line, f"unknown tier class {tier_class!r}")
        tiers.append((tier_class, name, items))
    if pos < len(tokens):  # a hand-edited file whose size says fewer than it holds: the rest would be lost
        raise LabelError(
            source, tokens[pos][2], f"{len(tokens) - pos} values after the last tier: does a size = say too few?"
        )
    interval_tiers = [t for t in tiers if t[0] == "IntervalTier"]
    if not interval_tiers:
        raise LabelError(source, None, "the TextGrid has no IntervalTier")
    for _, name, items in interval_tiers:
        if tier is not None and name == tier:
            return items
    if tier is not None and len(interval_tiers) > 1:
        names = ", ".join(repr(t[1]) for t in interval_tiers)
        raise LabelError(source, None, f"no IntervalTier named {tier!r} (found {names})")
    return interval_tiers[0][2]
