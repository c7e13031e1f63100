"""Hostile label files (issue 8): about two hundred generated cases over the four formats, all fast.

Every case goes through `rsc labels import` into a fresh copy of one small project. A label import is
all or nothing, so each case has exactly one right outcome, worked out here from the file's bytes by a
second, plain reading of the format (``expect_lines``, or written out for TextGrids): either the
recording's cycles become exactly the file's (exit 0), or one line names the file, and the line where
there is one, with exit status 2 and every table and ``PRAGMA integrity_check`` as they were.
"""

from __future__ import annotations

import csv
import io
import math
import re
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from trainer.labelfiles import format_audacity, format_csv, format_icbhi, format_textgrid
from trainer.labelfiles.interval import Interval
from trainer.project import CYCLE_TOLERANCE
from trainer.project.cycles import MAX_TIME
from trainer.vocab import LABEL_SYNONYMS, LABELS

ICBHI_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "icbhi" / "ICBHI_final_database"
DURATION = 30.0  # of the one recording the files are imported into
SUFFIX = {"icbhi": ".txt", "audacity": ".txt", "csv": ".csv", "textgrid": ".TextGrid"}
TABLES = ("recordings", "patients", "cycles", "cycle_edits", "imports", "import_messages")


# -- the project, the scratch space and the command line ------------------------------------------------
@pytest.fixture(scope="module")
def base_project(scratch) -> Path:
    """A project with one 30 s recording, ``rec``, holding three cycles (which a replace deletes)."""
    from trainer.data.folder import import_folder
    from trainer.project import Project

    audio = scratch / "audio"
    audio.mkdir()
    sf.write(audio / "rec.wav", (0.1 * np.sin(np.arange(int(DURATION * 1000)) / 3.0)).astype(np.float32), 1000,
             subtype="PCM_16")
    (audio / "rec.txt").write_text("1.0\t3.0\t0\t0\n3.0\t5.5\t1\t0\n6.0\t8.0\t0\t1\n")
    path = scratch / "base.rsc"
    with Project.create(path) as project:
        import_folder(project, audio)
        assert len(project.cycles()) == 3
    return path


@pytest.fixture(scope="module", autouse=True)
def one_parser():
    """The command line's parser, built once: building it costs more than most cases."""
    import trainer.cli as cli

    parser = cli.build_parser()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "build_parser", lambda: parser)
        yield


def snapshot(path: Path) -> dict:
    with closing(sqlite3.connect(path)) as conn:
        state = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}
        state["integrity"] = conn.execute("PRAGMA integrity_check").fetchone()[0]
        state["live"] = conn.execute(
            'SELECT start, "end", label FROM cycles WHERE deleted = 0 ORDER BY start, "end"'
        ).fetchall()
    return state


# -- a second, plain reading of the line formats ---------------------------------------------------------
_MARKS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe", "utf-16-le"),
          (b"\xfe\xff", "utf-16-be"), (b"\xef\xbb\xbf", "utf-8"))
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def decode(data: bytes) -> str | None:
    """What the file says, as the format documents it; None where a byte-order mark lies."""
    for mark, codec in _MARKS:
        if data.startswith(mark):
            try:
                return data[len(mark):].decode(codec)
            except UnicodeDecodeError:
                return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def number(text: str) -> float | None:
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def flag(text: str) -> int | None:
    value = number(text)
    return int(value) if value in (0.0, 1.0) else None


def label(text: str) -> int | None:
    key = text.strip().strip('"').lower()
    key = LABEL_SYNONYMS.get(key, key)
    if key in LABELS:
        return LABELS.index(key)
    if key.isdigit():
        try:
            value = int(key)
        except ValueError:
            return None
        return value if 0 <= value <= 3 else None
    return None


def breaks_rule(start, end, accepted, duration=DURATION) -> bool:
    """The cycle rule, written out again: finite times within a day, order, the audio, no overlap."""
    if not all(math.isfinite(t) and abs(t) <= MAX_TIME for t in (start, end)):
        return True
    if not end > start or start < 0 or end > duration + CYCLE_TOLERANCE:
        return True
    return any(start < e - CYCLE_TOLERANCE and end > s + CYCLE_TOLERANCE for s, e in accepted)


@dataclass
class Expect:
    ok: bool
    line: int | None = None  # of the refusal
    cycles: list = field(default_factory=list)  # (start, end, label) in time order, when ok


def read_icbhi_line(raw: str):
    line = raw.strip()
    if not line or line.startswith("#"):
        return "skip"
    parts = line.split()
    if len(parts) != 4:
        return None
    start, end, crackle, wheeze = number(parts[0]), number(parts[1]), flag(parts[2]), flag(parts[3])
    if None in (start, end, crackle, wheeze):
        return None
    return start, end, crackle + 2 * wheeze


def read_audacity_line(raw: str):
    if not raw.strip() or raw.startswith("\\"):
        return "skip"
    parts = raw.rstrip("\r\n").split("\t")
    if len(parts) < 2:
        parts = raw.split()
    if len(parts) < 2:
        return None
    start, end = number(parts[0]), number(parts[1])
    value = label("\t".join(parts[2:]).strip() if len(parts) > 2 else "")
    if None in (start, end, value):
        return None
    return start, end, value


def csv_rows(text: str):
    """(line, cells) of a CSV as the csv module reads it; raises (line,) at a row it cannot read."""
    reader = csv.reader(io.StringIO(text))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            raise LookupError(reader.line_num or 1) from None
        yield reader.line_num, row


def read_csv_row(header, row):
    if len(row) != len(header):
        return None
    cells = {name: value.strip() for name, value in zip(header, row)}
    start, end = number(cells["start"]), number(cells["end"])
    if "crackle" in cells and "wheeze" in cells and (cells["crackle"] or cells["wheeze"]):
        crackle, wheeze = flag(cells["crackle"]), flag(cells["wheeze"])
        if None in (crackle, wheeze):
            return None
        value = crackle + 2 * wheeze
        if cells.get("label") and label(cells["label"]) != value:
            return None
    else:
        value = label(cells.get("label", ""))
    if None in (start, end, value):
        return None
    named = cells.get("file", "")
    return start, end, value, named


def expect_lines(fmt: str, data: bytes) -> Expect:
    """The one right outcome of `rsc labels import --recording rec` (default mode) of a line-format file."""
    text = decode(data)
    if text is None:
        return Expect(False)
    items = []  # (line, start, end, label)
    if fmt == "csv":
        header, misnamed = None, None
        try:
            for line, row in csv_rows(text):
                if not row or all(not cell.strip() for cell in row):
                    continue
                if header is None:
                    header = [cell.strip().lower() for cell in row]
                    needs = {"start", "end"} <= set(header) and (
                        "label" in header or {"crackle", "wheeze"} <= set(header))
                    if not needs or len({h for h in header if h}) < len([h for h in header if h]):
                        return Expect(False, line)
                    continue
                read = read_csv_row(header, row)
                if read is None:
                    return Expect(False, line)
                *values, named = read
                if named and Path(named).name != "rec" and Path(Path(named).name).stem != "rec" and misnamed is None:
                    misnamed = line
                items.append((line, *values))
        except LookupError as error:
            return Expect(False, error.args[0])
        if header is None:
            return Expect(False)
        if not items:
            return Expect(False)
        if misnamed is not None:
            return Expect(False, misnamed)
    else:
        reader = read_icbhi_line if fmt == "icbhi" else read_audacity_line
        for line, raw in enumerate(text.splitlines(), 1):
            read = reader(raw)
            if read is None:
                return Expect(False, line)
            if read != "skip":
                items.append((line, *read))
        if not items:
            return Expect(False)
    accepted = []
    for line, start, end, value in items:
        if breaks_rule(start, end, accepted):
            return Expect(False, line)
        accepted.append((start, end))
    return Expect(True, cycles=sorted((s, e, v) for _, s, e, v in items))


# -- the inputs ------------------------------------------------------------------------------------------
def seed_cycles() -> list[list[Interval]]:
    """Cycle lists to mutate: real ICBHI annotations that fit 30 s where the files are here, and made-up ones."""
    seeds = []
    if ICBHI_DIR.is_dir():
        for name in ("101_1b1_Al_sc_Meditron.txt", "107_2b3_Al_mc_AKGC417L.txt"):
            rows = [line.split() for line in (ICBHI_DIR / name).read_text().splitlines() if line.strip()]
            seeds.append([Interval(float(a), float(b), int(c), int(d)) for a, b, c, d in rows if float(b) <= DURATION])
    rng = np.random.default_rng(8)
    cursor, made = 0.3, []
    while cursor < DURATION - 4:
        length = float(rng.uniform(0.8, 3.5))
        made.append(Interval(round(cursor, 3), round(cursor + length, 3), int(rng.integers(2)), int(rng.integers(2))))
        cursor += length + float(rng.uniform(0, 0.4))
    return seeds + [made]


def as_text(fmt: str, cycles) -> str:
    if fmt == "icbhi":
        return format_icbhi(cycles)
    if fmt == "audacity":
        return format_audacity(cycles)
    return format_csv(cycles, file="rec")


FIELD_VALUES = ["nan", "inf", "-inf", "Infinity", "1e400", "1e308", "1e5", "-0.5", "", "abc", "1_5", "1,5",
                "\u0663", "0x1f", "1e-400", "  2.5  ", "2.5.1", "+.5e1"]
LABEL_VALUES = {"icbhi": ["2", "-1", "0.5", "yes", "1.0", ""], "audacity": ["squeak", "4", "CRACKLE", "c", "", "2.5"],
                "csv": ["squeak", "4", "both", "W", "", "3"]}


def _sep(fmt: str) -> str:
    return "," if fmt == "csv" else "\t"


def _field_mutations(fmt: str, lines: list[str], k: int):
    sep = _sep(fmt)
    cells = lines[k].split(sep)
    t = 1 if fmt == "csv" else 0  # where the times are
    for index, values in ((t, FIELD_VALUES), (t + 1, FIELD_VALUES[:9])):
        for value in values:
            changed = list(cells)
            changed[index] = value
            yield f"field{index}={value!r}", lines[:k] + [sep.join(changed)] + lines[k + 1:]
    label_index = 3 if fmt == "csv" else 2
    for value in LABEL_VALUES[fmt]:
        changed = list(cells)
        changed[label_index] = value
        if fmt == "csv":  # the flags columns would decide otherwise
            changed[4:6] = ["", ""]
        yield f"label={value!r}", lines[:k] + [sep.join(changed)] + lines[k + 1:]


def _structure_mutations(fmt: str, lines: list[str], k: int):
    sep = _sep(fmt)
    cells = lines[k].split(sep)
    t = 1 if fmt == "csv" else 0  # where the times are
    swapped = list(cells)
    swapped[t], swapped[t + 1] = cells[t + 1], cells[t]
    same = list(cells)
    same[t + 1] = cells[t]
    past = list(cells)
    past[t + 1] = f"{DURATION + 5:g}"
    negative = list(cells)
    negative[t] = "-1.25"
    shifted = list(cells)
    shifted[t], shifted[t + 1] = (f"{float(cells[t]) + 0.3:g}", f"{float(cells[t + 1]) + 0.3:g}")
    yield "swapped-times", lines[:k] + [sep.join(swapped)] + lines[k + 1:]
    yield "zero-length", lines[:k] + [sep.join(same)] + lines[k + 1:]
    yield "past-the-end", lines[:k] + [sep.join(past)] + lines[k + 1:]
    yield "negative-start", lines[:k] + [sep.join(negative)] + lines[k + 1:]
    yield "duplicate-line", lines[:k + 1] + [lines[k]] + lines[k + 1:]
    yield "overlap-by-0.3s", lines[:k + 1] + [sep.join(shifted)] + lines[k + 1:]
    yield "within-tolerance-twin", lines[:k + 1] + [sep.join(
        [f"{float(c) + 0.004:g}" if i in (t, t + 1) else c for i, c in enumerate(cells)])] + lines[k + 1:]
    yield "missing-field", lines[:k] + [sep.join(cells[:-1])] + lines[k + 1:]
    yield "extra-field", lines[:k] + [sep.join(cells + ["1"])] + lines[k + 1:]
    yield "spaces-for-separators", lines[:k] + [" ".join(cells)] + lines[k + 1:]
    yield "semicolons", [line.replace(sep, ";") for line in lines]
    yield "nul-byte", lines[:k] + [lines[k][:3] + "\x00" + lines[k][3:]] + lines[k + 1:]
    yield "form-feed-splits-a-line", lines[:k] + [lines[k][:4] + "\x0c" + lines[k][4:]] + lines[k + 1:]
    yield "blank-lines-and-crlf", [line + "\r\n" for line in lines[:k]] + ["", "   "] + lines[k:]
    yield "long-line", lines[:k] + [lines[k] + sep + "x" * 200_000] + lines[k + 1:]
    yield "reversed", lines[:1] + lines[:0:-1] if fmt == "csv" else lines[::-1]
    yield "only-a-header-or-comment", lines[:1] if fmt == "csv" else ["# no cycles here"]


def _byte_mutations(text: str):
    data = text.encode()
    for fraction in (0.0, 0.31, 0.5, 0.77):
        yield f"truncated-at-{fraction}", data[: int(len(data) * fraction)]
    yield "truncated-by-one-byte", data[:-1]
    yield "one-byte", data[:1]
    rng = np.random.default_rng(len(data))
    for size in (1, 16, 500, 4096):
        yield f"random-{size}-bytes", rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    yield "random-printable", bytes(rng.integers(32, 127, 800, dtype=np.uint8))
    yield "utf-8-bom", b"\xef\xbb\xbf" + data
    yield "utf-16-with-bom", text.encode("utf-16")
    yield "utf-16-be-with-bom", b"\xfe\xff" + text.encode("utf-16-be")
    yield "utf-16-without-bom", text.encode("utf-16-le")
    yield "utf-16-odd-length", text.encode("utf-16")[:-1]
    yield "utf-32-with-bom", text.encode("utf-32")
    yield "utf-8-bom-then-latin-1", b"\xef\xbb\xbf" + text.encode() + "\xe9".encode("latin-1")
    yield "cr-only-line-ends", text.replace("\n", "\r").encode()
    yield "every-line-twice", "".join(line + "\n" + line + "\n" for line in text.splitlines()).encode()


def line_format_cases():
    cases = []
    seeds = seed_cycles()
    for fmt in ("icbhi", "audacity", "csv"):
        # The real ICBHI files feed the ICBHI format's whole-file faults; the made-up seed feeds all.
        chosen = list(enumerate(seeds)) if fmt == "icbhi" else [(len(seeds) - 1, seeds[-1])]
        for index, cycles in chosen:
            text = as_text(fmt, cycles)
            lines = text.splitlines()
            k = 2  # the third cycle, or the second row after a CSV's header
            found = list(_byte_mutations(text))
            if index == len(seeds) - 1:
                found += [(n, ("\n".join(m) + "\n").encode()) for n, m in _field_mutations(fmt, lines, k)]
                found += [(n, ("\n".join(m) + "\n").encode()) for n, m in _structure_mutations(fmt, lines, k)]
            cases += [pytest.param(fmt, data, id=f"{fmt}-seed{index}-{name}") for name, data in found]
    for name, header in (("no-header", "rec,1,2,normal"), ("duplicate-column", "file,start,end,label,start"),
                         ("tab-separated", "file\tstart\tend\tlabel"), ("flags-only", "file,start,end,crackle"),
                         ("header-only-bom", "\ufefffile,start,end,label")):
        data = (header + "\nrec,1.0,2.0,normal\n").encode()
        cases.append(pytest.param("csv", data, id=f"csv-header-{name}"))
    cases.append(pytest.param("csv", b"file,start,end,label\nother,1.0,2.0,normal\n", id="csv-names-another-recording"))
    cases.append(pytest.param("csv", b'file,start,end,label\n"rec,1.0,2.0,normal\n', id="csv-unclosed-quote"))
    return cases


@pytest.mark.parametrize("fmt, data", line_format_cases())
def test_a_hostile_line_format_file_is_imported_exactly_or_refused_by_line(scratch, base_project, capsys, fmt, data):
    expect_and_check(scratch, base_project, capsys, fmt, data, expect_lines(fmt, data))


# -- TextGrids: the structure is the hostile part, so each case says what it expects --------------------
def _grid(cycles=((1.0, 2.0, "crackle"), (2.5, 4.0, "normal"), (4.0, 6.5, "both")), short=False) -> str:
    text = format_textgrid([Interval(s, e, *((LABELS.index(l) & 1), LABELS.index(l) >> 1)) for s, e, l in cycles],
                           DURATION)
    if short:
        values = re.findall(r'= (\S+|"[^"]*") ?$|(<exists>)', text, re.M)
        text = 'File type = "ooTextFile short"\n' + "\n".join(a or b for a, b in values[1:]) + "\n"
    return text


GRID_CYCLES = [(1.0, 2.0, 1), (2.5, 4.0, 0), (4.0, 6.5, 3)]


def _line_of(text: str, needle: str, nth: int = 1) -> int:
    found = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return found[nth - 1]


def textgrid_cases():
    base = _grid()
    line = lambda needle, nth=1: _line_of(base, needle, nth)  # noqa: E731
    size = re.search(r"intervals: size = (\d+)", base)[1]
    ok = Expect(True, cycles=GRID_CYCLES)
    cases = [("long", base.encode(), ok), ("short", _grid(short=True).encode(), ok),
             ("utf-16", base.encode("utf-16"), ok), ("utf-8-bom", b"\xef\xbb\xbf" + base.encode(), ok),
             ("crlf", base.replace("\n", "\r\n").encode(), ok),
             ("tier-renamed", base.replace('"cycles"', '"phones"').encode(), ok),
             ("utf-16-odd-length", base.encode("utf-16")[:-1], Expect(False)),
             ("empty", b"", Expect(False)), ("only-gaps", _grid(()).encode(), Expect(False))]
    counted = lambda value: base.replace(f"intervals: size = {size} ", f"intervals: size = {value} ")  # noqa: E731
    for value in ("-3", "1e400", "2.5", "100000"):
        cases.append((f"interval-count={value}", counted(value).encode(), Expect(False, line("intervals: size"))))
    for value in ("0", str(int(size) - 1)):  # values left over after the tier: refused where they start
        first_left = line("xmin = ", 3) if value == "0" else line("xmin = ", 3 + int(value))
        cases.append((f"interval-count={value}", counted(value).encode(), Expect(False, first_left)))
    tiers = lambda value: base.replace("\nsize = 1 ", f"\nsize = {value} ", 1)  # noqa: E731
    for value in ("-1", "1e400"):
        cases.append((f"tier-count={value}", tiers(value).encode(), Expect(False, line("size = 1 "))))
    cases.append(("tier-count=0", tiers(0).encode(), Expect(False, line("IntervalTier"))))
    cases.append(("tier-count=3", tiers(3).encode(), Expect(False, ...)))  # ends early, at its last value
    crackle = line("xmin = 1 ")  # the crackle interval's first line
    for value in ("nan", "inf", "1e400", "-1", "7", "1,5", "1_5", "\u0661"):
        cases.append((f"cycle-xmin={value}", base.replace("xmin = 1 ", f"xmin = {value} ", 1).encode(),
                      Expect(False, crackle)))
    cases.append(("cycle-xmin=0.5", base.replace("xmin = 1 ", "xmin = 0.5 ", 1).encode(),
                  Expect(True, cycles=[(0.5, 2.0, 1)] + GRID_CYCLES[1:])))
    cases.append(("cycle-past-the-end", base.replace("xmax = 6.5 ", f"xmax = {DURATION + 9:g} ", 1).encode(),
                  Expect(False, line("xmin = 4 "))))
    cases.append(("cycle-overlaps", base.replace("xmin = 2.5 ", "xmin = 1.5 ", 1).encode(),
                  Expect(False, line("xmin = 2.5 "))))
    cases.append(("unknown-label", base.replace('"crackle"', '"squeak"').encode(), Expect(False, crackle)))
    cases.append(("unclosed-quote", base.replace('"crackle" ', '"crackle ').encode(), Expect(False, ...)))
    cases.append(("not-a-textgrid", base.replace('"TextGrid"', '"Pitch"').encode(), Expect(False, 2)))
    cases.append(("not-praat", base.replace('"ooTextFile"', '"Other"').encode(), Expect(False, 1)))
    cases.append(("no-tiers", base.replace("<exists>", "<absent>").encode(), Expect(False, line("<exists>"))))
    cases.append(("point-tier", base.replace('"IntervalTier"', '"TextTier"').encode(), Expect(False, ...)))
    cases.append(("unknown-tier-class", base.replace('"IntervalTier"', '"Weird"').encode(),
                  Expect(False, line("IntervalTier"))))
    data = base.encode()
    for fraction in (0.05, 0.1, 0.4, 0.6, 0.9, 0.99):
        cases.append((f"truncated-at-{fraction}", data[: int(len(data) * fraction)], Expect(False, ...)))
    rng = np.random.default_rng(3)
    for size_ in (1, 64, 2000):
        cases.append((f"random-{size_}-bytes", rng.integers(0, 256, size_, dtype=np.uint8).tobytes(), Expect(False, ...)))
    return [pytest.param(data, expect, id=f"textgrid-{name}") for name, data, expect in cases]


@pytest.mark.parametrize("data, expect", textgrid_cases())
def test_a_hostile_textgrid_is_imported_exactly_or_refused_by_line(scratch, base_project, capsys, data, expect):
    expect_and_check(scratch, base_project, capsys, "textgrid", data, expect)


# -- the one check every case ends in -------------------------------------------------------------------
_counter = iter(range(10**9))


def expect_and_check(scratch: Path, base_project: Path, capsys, fmt: str, data: bytes, expect: Expect) -> None:
    """Import ``data`` as a label file of ``rec`` and hold the result to ``expect``.

    ``expect.line`` is the refusal's line, None for a refusal of the whole file, or ``...`` for "refused,
    at a line of the file or as a whole: which, this suite does not work out".
    """
    from trainer.cli import main as rsc

    folder = scratch / f"case{next(_counter)}"
    folder.mkdir()
    project = folder / "p.rsc"
    shutil.copyfile(base_project, project)
    labels = folder / f"labels{SUFFIX[fmt]}"
    labels.write_bytes(data)
    before = snapshot(project)
    argv = ["labels", "import", str(project), str(labels), "--recording", "rec"]
    if fmt in ("icbhi", "audacity"):
        argv += ["--format", fmt]
    capsys.readouterr()
    status = rsc(argv)
    out, err = capsys.readouterr()
    after = snapshot(project)
    assert after["integrity"] == "ok"
    if expect.ok:
        assert (status, err) == (0, ""), err
        assert out.strip() == f"{len(expect.cycles)} added, {len(before['live'])} replaced"
        assert len(after["live"]) == len(expect.cycles)
        for got, want in zip(after["live"], expect.cycles):
            assert got[2] == want[2] and abs(got[0] - want[0]) < 1e-9 and abs(got[1] - want[1]) < 1e-9
        grown = {t: after[t] - before[t] for t in TABLES}
        n, old = len(expect.cycles), len(before["live"])
        assert grown == {"recordings": 0, "patients": 0, "cycles": n, "cycle_edits": n + old, "imports": 1,
                         "import_messages": 0}
        return
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
    where = f"rsc labels: {labels}"
    if expect.line is None:
        assert lines[0].startswith(where + ": "), lines[0]
    elif expect.line is ...:
        match = re.match(re.escape(where) + r"(?::(\d+))?: ", lines[0])
        assert match, lines[0]
        assert match[1] is None or 1 <= int(match[1]) <= max(1, len((decode(data) or "").splitlines())), lines[0]
    else:
        assert lines[0].startswith(f"{where}:{expect.line}: "), (expect.line, lines[0])
    assert after == before, "a refused file changed the project"


@pytest.mark.parametrize("kind", ["pipe", "folder", "missing"])
def test_a_label_file_that_is_no_file_is_refused_without_waiting(scratch, base_project, capsys, kind):
    import os

    from trainer.cli import main as rsc

    folder = scratch / f"case{next(_counter)}"
    folder.mkdir()
    project = folder / "p.rsc"
    shutil.copyfile(base_project, project)
    target = folder / "labels.txt"
    if kind == "pipe":
        os.mkfifo(target)  # reading it would wait for a writer forever
    elif kind == "folder":
        target.mkdir()
    before = snapshot(project)
    capsys.readouterr()
    assert rsc(["labels", "import", str(project), str(target), "--recording", "rec"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    words = {"pipe": "not a regular file", "folder": "not a regular file (a folder)", "missing": "file not found"}
    assert line == f"rsc labels: {target}: {words[kind]}"
    assert snapshot(project) == before
