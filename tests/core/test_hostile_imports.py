"""Hostile inputs to the two importers (issue 8): about two hundred generated cases, all fast.

Each case is one dataset folder with one file made hostile (an annotation, the split, demographics,
diagnosis or folds file, a recording's audio or its name, a labels CSV), imported with `rsc import`
into an empty project. An import reports a bad line and goes on, refuses a file nothing can be read
from (and what it labels) with exit status 2, and refuses the whole import, in one line, when a file
it rests on cannot be read. So every case has one right outcome, worked out here from the bytes by the
plain reading of the formats in ``test_hostile_labels``: which lines are named, which cycles are
stored (exactly, with their lines), the exit status, the patients (those of the recordings, no more)
and ``PRAGMA integrity_check``. Each import is then run again, and must add nothing.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from test_hostile_labels import (  # the second reading of the formats, shared with the label-file suite
    breaks_rule, decode, read_csv_row, read_icbhi_line,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "icbhi"
A, B, C = "101_1b1_Al_sc_Meditron", "102_1b1_Ar_sc_Meditron", "103_2b2_Ar_mc_LittC2SE"
RATE = 1000
LENGTHS = {A: 20.0, B: 6.0, C: 6.0}  # seconds
SMALL = "0.5\t2.0\t0\t0\n2.0\t4.0\t1\t0\n"
TABLES = ("recordings", "patients", "cycles", "cycle_edits", "imports", "import_messages")


def _seed(name: str, fallback: str) -> str:
    path = SHARED / name
    return path.read_text() if path.is_file() else fallback


# Real ICBHI files where they are here (read, never written), else look-alikes.
ANNOTATION_A = _seed(f"ICBHI_final_database/{A}.txt", "".join(
    f"{1.5 * i + 0.04:.3f}\t{1.5 * i + 1.5:.3f}\t{i % 2}\t{(i // 2) % 2}\n" for i in range(13)))
DEMOGRAPHICS = "\n" + "".join(line + "\n" for line in _seed("demographic_info.txt", "").splitlines()[1:4]) \
    if (SHARED / "demographic_info.txt").is_file() else "\n101 3 F NA 19 99\n102 0.75 F NA 9.8 73\n103 70 F 33 NA NA\n"
DIAGNOSIS = "ID,CLASS\n101,URTI\n102,Healthy\n103,Asthma\n"
FOLDS = "101 0\n102 1\n103 2\n"
SPLIT = f"{A}\ttrain\r\n{B}\ttest\r\n{C}\ttrain\r\n"


@pytest.fixture(scope="module")
def empty_project(scratch) -> Path:
    from trainer.project import Project

    path = scratch / "empty.rsc"
    Project.create(path).close()
    return path


@pytest.fixture(scope="module", autouse=True)
def one_parser():
    """The command line's parser, built once: building it costs more than most cases."""
    import trainer.cli as cli

    parser = cli.build_parser()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "build_parser", lambda: parser)
        yield


def wav_bytes(seconds: float, subtype: str = "PCM_16", samples: np.ndarray | None = None, rate: int = RATE) -> bytes:
    import io

    if samples is None:
        samples = (0.1 * np.sin(np.arange(int(seconds * rate)) / 3.0)).astype(np.float32)
    out = io.BytesIO()
    sf.write(out, samples, rate, subtype=subtype, format="WAV")
    return out.getvalue()


WAVS = {stem: wav_bytes(seconds) for stem, seconds in LENGTHS.items()}


# -- what one case is, and what it must give ------------------------------------------------------------
@dataclass
class Expect:
    """The outcome, from the inputs: a whole refusal, or per-line errors, stored cycles and refused files."""

    refused_import: tuple | None = None  # (file, line or None or ...)
    errors: set = field(default_factory=set)  # {(file, line or None)}
    cycles: dict = field(default_factory=dict)  # recording name -> [(line, start, end, label)]
    refused: set = field(default_factory=set)  # files refused as a whole (their recording not imported)
    audio: dict = field(default_factory=dict)  # recording name -> audio status other than ok


def expect_annotation(data: bytes, duration: float | None, file: Path, name: str, expect: Expect) -> None:
    """An annotation file as an importer reads it: bad lines named and skipped, the cycle rule per line,
    and the whole file refused when nothing in it can be read."""
    text = decode(data)
    if text is None:
        expect.refused.add(file)
        expect.errors.add((file, None))
        return
    good, bad = [], []
    for line, raw in enumerate(text.splitlines(), 1):
        read = read_icbhi_line(raw)
        if read is None:
            bad.append(line)
        elif read != "skip":
            good.append((line, *read))
    if bad and not good:
        expect.refused.add(file)
        expect.errors.add((file, bad[0]))
        return
    expect.errors |= {(file, line) for line in bad}
    expect.cycles[name] = screened(good, duration, file, expect)


def screened(items, duration, file, expect) -> list:
    accepted, kept = [], []
    for line, start, end, value in items:
        if breaks_rule(start, end, accepted, duration if duration is not None else float("inf")):
            expect.errors.add((file, line))
        else:
            accepted.append((start, end))
            kept.append((line, start, end, value))
    return kept


def expect_metadata(data: bytes, file: Path, judge, expect: Expect) -> bool:
    """A split/demographics/diagnosis/folds file: its bad lines named; False, with the import refused, when
    it cannot be decoded, is empty, or not one of its lines can be read."""
    text = decode(data)
    if text is None or not text.strip():
        expect.refused_import = (file, None)
        return False
    bad, other_errors, good = judge(text)
    if bad and not good:
        expect.refused_import = (file, bad[0])
        return False
    expect.errors |= {(file, line) for line in bad + other_errors}
    return True


def judge_split(text: str):
    entries, bad, conflicts = {}, [], []
    for line, raw in enumerate(text.splitlines(), 1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1].lower() not in ("train", "test"):
            bad.append(line)
        elif entries.setdefault(parts[0], parts[1].lower()) != parts[1].lower():
            conflicts.append(line)
    return bad, conflicts, len(entries)


def judge_demographics(text: str):
    from test_hostile_labels import number

    def measurement(part: str) -> bool:
        return part.upper() in ("NA", "N/A") or (number(part) is not None and number(part) >= 0)

    patients, bad = set(), []
    for line, raw in enumerate(text.splitlines(), 1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 6 or not all(measurement(p) for p in (parts[1], parts[3], parts[4], parts[5])):
            bad.append(line)
        else:
            patients.add(parts[0])
    return bad, [], len(patients)


def judge_diagnosis(text: str):
    import csv

    diagnoses, bad = set(), []
    for line, raw in enumerate(text.splitlines(), 1):
        try:
            row = next(csv.reader([raw]), [])
        except csv.Error:
            bad.append(line)
            continue
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            bad.append(line)
        elif not (line == 1 and not row[0].strip().isdigit()):
            diagnoses.add(row[0].strip())
    return bad, [], len(diagnoses)


def judge_folds(text: str):
    folds, bad = set(), []
    for line, raw in enumerate(text.splitlines(), 1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 2 or not (parts[1].isascii() and parts[1].isdigit()):
            bad.append(line)
        else:
            folds.add(parts[0])
    return bad, [], len(folds)


# In the order the importer reads them: the first that cannot be read refuses the import.
METADATA = {"ICBHI_challenge_train_test.txt": (SPLIT, judge_split),
            "demographic_info.txt": (DEMOGRAPHICS, judge_demographics),
            "patient_diagnosis.csv": (DIAGNOSIS, judge_diagnosis),
            "patient_list_foldwise.txt": (FOLDS, judge_folds)}


# -- running a case --------------------------------------------------------------------------------------
_counter = iter(range(10**9))


def snapshot(path: Path) -> dict:
    with closing(sqlite3.connect(path)) as conn:
        state = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}
        state["integrity"] = conn.execute("PRAGMA integrity_check").fetchone()[0]
        state["foreign_keys"] = conn.execute("PRAGMA foreign_key_check").fetchall()
        state["recording_rows"] = {
            name: (status, pid) for name, status, pid in conn.execute(
                "SELECT name, audio_status, patient_id FROM recordings")
        }
        state["patient_ids"] = {row[0] for row in conn.execute("SELECT id FROM patients")}
        state["cycle_rows"] = {}
        for name, line, start, end, value in conn.execute(
            'SELECT r.name, c.source_line, c.start, c."end", c.label FROM cycles c '
            "JOIN recordings r ON r.id = c.recording_id WHERE c.deleted = 0 ORDER BY c.id"
        ):
            state["cycle_rows"].setdefault(name, []).append((line, start, end, value))
        state["statuses"] = [row[0] for row in conn.execute("SELECT status FROM imports ORDER BY id")]
    return state


def run_import(capsys, argv) -> tuple[int, str, str]:
    from trainer.cli import main as rsc

    capsys.readouterr()
    status = rsc([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def check(capsys, empty_project: Path, folder: Path, argv_tail: list, expect: Expect) -> None:
    project = folder / "p.rsc"
    shutil.copyfile(empty_project, project)
    status, out, err = run_import(capsys, ["import", *argv_tail[:1], project, *argv_tail[1:], "--quiet"])
    after = snapshot(project)
    assert after["integrity"] == "ok" and after["foreign_keys"] == []
    assert "Traceback" not in err
    if expect.refused_import is not None:
        file, line = expect.refused_import
        lines = err.strip().splitlines()
        assert status == 2 and len(lines) == 1, err
        match = re.match(re.escape(f"rsc import: {file}") + r"(?::(\d+))?: ", lines[0])
        assert match, (expect.refused_import, lines[0])
        if line is not ...:
            assert match[1] == (str(line) if line else None), (expect.refused_import, lines[0])
        assert {t: after[t] for t in TABLES} == {"recordings": 0, "patients": 0, "cycles": 0, "cycle_edits": 0,
                                                 "imports": 1, "import_messages": 1}
        assert after["statuses"] == ["failed"]
        return
    assert status == (2 if expect.refused else 0), err
    for line in err.strip().splitlines():  # every message names one of the inputs
        assert line.startswith(str(folder)), line
    for file, number in expect.errors:
        where = f"{file}:{number}: error: " if number else f"{file}: error: "
        assert any(line.startswith(where) for line in err.splitlines()), (where, err)
    named = {(m[1], int(m[2]) if m[2] else None) for m in re.finditer(r"^(.*?)(?::(\d+))?: error: ", err, re.M)}
    assert named <= {(str(f), n) for f, n in expect.errors}, ("errors nobody expected", named, expect.errors)
    assert set(after["recording_rows"]) == set(expect.cycles)
    for name, cycles in expect.cycles.items():
        got = after["cycle_rows"].get(name, [])
        assert [(line, value) for line, _, _, value in got] == [(line, value) for line, _, _, value in cycles], name
        assert all(abs(g[1] - w[1]) < 1e-9 and abs(g[2] - w[2]) < 1e-9 for g, w in zip(got, cycles)), name
    for name, (audio_status, _) in after["recording_rows"].items():
        assert audio_status == expect.audio.get(name, "ok"), (name, audio_status)
    # Patients are written with their recordings: exactly the patients of the recordings here.
    assert after["patient_ids"] == {pid for _, pid in after["recording_rows"].values() if pid}
    assert after["statuses"] == ["done"]
    # Run again: nothing is added twice, and the outcome is the same.
    again, out2, _ = run_import(capsys, ["import", *argv_tail[:1], project, *argv_tail[1:], "--quiet"])
    second = snapshot(project)
    assert again == status and "added" not in out2, out2
    assert (second["recording_rows"], second["cycle_rows"], second["patient_ids"]) == (
        after["recording_rows"], after["cycle_rows"], after["patient_ids"])


# -- the ICBHI layout ------------------------------------------------------------------------------------
def write_icbhi(folder: Path, replace: dict[str, bytes | None]) -> Path:
    """The dataset, with ``replace`` ({relative path: bytes, or None to leave the file out}) applied."""
    root = folder / "data"
    audio = root / "ICBHI_final_database"
    audio.mkdir(parents=True)
    files = {f"ICBHI_final_database/{stem}.wav": data for stem, data in WAVS.items()}
    files |= {f"ICBHI_final_database/{A}.txt": ANNOTATION_A.encode(), f"ICBHI_final_database/{B}.txt": SMALL.encode(),
              f"ICBHI_final_database/{C}.txt": SMALL.encode(), "ICBHI_challenge_train_test.txt": SPLIT.encode(),
              "demographic_info.txt": DEMOGRAPHICS.encode(), "patient_diagnosis.csv": DIAGNOSIS.encode(),
              "patient_list_foldwise.txt": FOLDS.encode()}
    files |= replace
    for relative, data in files.items():
        if data is not None:
            (root / os.fsdecode(relative) if isinstance(relative, bytes) else root / relative).write_bytes(data)
    return root


def base_expect(root: Path, skip: tuple = ()) -> Expect:
    audio = root / "ICBHI_final_database"
    expect = Expect()
    for stem in (A, B, C):
        if stem in skip:
            continue
        text = (audio / f"{stem}.txt").read_bytes()
        expect_annotation(text, LENGTHS[stem], audio / f"{stem}.txt", stem, expect)
    return expect


def annotation_cases():
    from test_hostile_labels import _byte_mutations, _field_mutations, _structure_mutations

    lines = ANNOTATION_A.splitlines()
    found = list(_byte_mutations(ANNOTATION_A))
    found += [(n, ("\n".join(m) + "\n").encode()) for n, m in _field_mutations("icbhi", lines, 2)]
    found += [(n, ("\n".join(m) + "\n").encode()) for n, m in _structure_mutations("icbhi", lines, 2)]
    return [pytest.param(data, id=f"annotation-{name}") for name, data in found]


@pytest.mark.parametrize("data", annotation_cases())
def test_a_hostile_annotation_file(scratch, empty_project, capsys, data):
    folder = scratch / f"case{next(_counter)}"
    root = write_icbhi(folder, {f"ICBHI_final_database/{A}.txt": data})
    expect = base_expect(root)
    check(capsys, empty_project, folder, ["icbhi", root], expect)


def metadata_cases():
    from test_hostile_labels import _byte_mutations

    cases = []
    for file, (text, _) in METADATA.items():
        cases += [pytest.param(file, data, id=f"{file.split('.')[0]}-{name}") for name, data in _byte_mutations(text)]
    edits = [
        ("ICBHI_challenge_train_test.txt", SPLIT.replace("\ttest", "\tvalidation")),
        ("ICBHI_challenge_train_test.txt", SPLIT + f"{A}\ttest\r\n"),  # a conflicting second line
        ("ICBHI_challenge_train_test.txt", SPLIT.replace(f"{C}\ttrain", f"{C}\ttrain\textra")),
        ("ICBHI_challenge_train_test.txt", SPLIT.replace("Meditron", "LittC2SE", 1)),  # the device mismatch
        ("ICBHI_challenge_train_test.txt", "garbage\nmore garbage\n"),
        ("demographic_info.txt", DEMOGRAPHICS.replace("101 3 ", "101 nan ", 1)),
        ("demographic_info.txt", DEMOGRAPHICS.replace("101 3 ", "101 -3 ", 1)),
        ("demographic_info.txt", DEMOGRAPHICS.replace("101 3 ", "101 1e400 ", 1)),
        ("demographic_info.txt", DEMOGRAPHICS.replace("101 3 ", "101 3_0 ", 1)),
        ("demographic_info.txt", DEMOGRAPHICS.replace("101 3 F NA", "101 3 F", 1)),
        ("patient_diagnosis.csv", DIAGNOSIS.replace("102,Healthy", "102,Healthy,extra")),
        ("patient_diagnosis.csv", DIAGNOSIS.replace("102,Healthy", "102\x00,Healthy")),
        ("patient_list_foldwise.txt", FOLDS.replace("102 1", "102 one")),
        ("patient_list_foldwise.txt", FOLDS.replace("102 1", "102 \u0661")),
    ]
    for index, (file, text) in enumerate(edits):
        cases.append(pytest.param(file, text.encode(), id=f"{file.split('.')[0]}-edit{index}"))
    return cases


@pytest.mark.parametrize("file, data", metadata_cases())
def test_a_hostile_split_or_metadata_file(scratch, empty_project, capsys, file, data):
    folder = scratch / f"case{next(_counter)}"
    root = write_icbhi(folder, {file: data})
    expect = base_expect(root)
    for name, (_, judge) in METADATA.items():
        if not expect_metadata((root / name).read_bytes(), root / name, judge, expect) or name == file:
            break
    check(capsys, empty_project, folder, ["icbhi", root], expect)


def _float_wav(bad: float, subtype: str = "FLOAT") -> bytes:
    samples = (0.1 * np.sin(np.arange(int(LENGTHS[A] * RATE)) / 3.0))
    samples[4321] = bad
    return wav_bytes(0, subtype, samples.astype(np.float64 if subtype == "DOUBLE" else np.float32))


def audio_cases():
    full = WAVS[A]
    return [
        pytest.param(b"", "unreadable", None, id="audio-empty"),
        pytest.param(b"not audio at all\n" * 40, "unreadable", None, id="audio-text"),
        pytest.param(full[:44], "unreadable", None, id="audio-header-only"),
        pytest.param(full[:30], "unreadable", None, id="audio-truncated-header"),
        pytest.param(full[: 44 + (len(full) - 44) // 2], "ok", LENGTHS[A] / 2, id="audio-half-the-data"),
        pytest.param(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes(), "unreadable", None,
                     id="audio-random-bytes"),
        pytest.param(b"RIFF" + np.random.default_rng(2).integers(0, 256, 5000, dtype=np.uint8).tobytes(), "unreadable",
                     None, id="audio-riff-then-noise"),
        pytest.param(_float_wav(np.nan), "unreadable", None, id="audio-float-nan"),
        pytest.param(_float_wav(np.inf), "unreadable", None, id="audio-float-inf"),
        pytest.param(_float_wav(-np.inf), "unreadable", None, id="audio-float-minus-inf"),
        pytest.param(_float_wav(1e300, "DOUBLE"), "unreadable", None, id="audio-double-beyond-float32"),
        pytest.param(_float_wav(0.5), "ok", LENGTHS[A], id="audio-float-fine"),
        pytest.param(wav_bytes(LENGTHS[A], "PCM_U8"), "ok", LENGTHS[A], id="audio-8-bit"),
        pytest.param(wav_bytes(0, "FLOAT", np.zeros(0, dtype=np.float32)), "unreadable", None, id="audio-no-frames"),
        pytest.param(wav_bytes(LENGTHS[A] / 4, "PCM_16", rate=4 * RATE), "ok", LENGTHS[A] / 4, id="audio-other-rate"),
    ]


@pytest.mark.parametrize("data, status, duration", audio_cases())
def test_hostile_audio_keeps_its_annotations_and_says_why(scratch, empty_project, capsys, data, status, duration):
    folder = scratch / f"case{next(_counter)}"
    root = write_icbhi(folder, {f"ICBHI_final_database/{A}.wav": data})
    expect = base_expect(root, skip=(A,))
    annotation = root / "ICBHI_final_database" / f"{A}.txt"
    expect_annotation(annotation.read_bytes(), duration, annotation, A, expect)
    if status != "ok":
        expect.audio[A] = status
        expect.errors.add((root / "ICBHI_final_database" / f"{A}.wav", None))
    check(capsys, empty_project, folder, ["icbhi", root], expect)


def name_cases():
    audio = "ICBHI_final_database"
    return [  # (files to add or leave out, the file refused, recordings without cycles, recordings without audio)
        pytest.param({f"{audio}/caf\xe9.wav".encode("latin-1"): WAVS[B]}, f"{audio}/caf\\xe9.wav", (), (),
                     id="name-not-utf8"),
        pytest.param({f"{audio}/{B}.WAV": WAVS[B]}, f"{audio}/{B}.wav", (), (), id="name-a-second-wav-in-capitals"),
        pytest.param({f"{audio}/{C}.txt": None}, None, (C,), (), id="name-wav-without-annotation"),
        pytest.param({f"{audio}/{C}.wav": None}, None, (), (C,), id="name-annotation-without-wav"),
        pytest.param({f"{audio}/notes.wav": WAVS[B]}, None, ("notes",), (), id="name-not-an-icbhi-name"),
        pytest.param({f"{audio}/\u0661\u0660\u0661_1b1_Al_sc_Meditron.wav": WAVS[B]}, None,
                     ("\u0661\u0660\u0661_1b1_Al_sc_Meditron",), (), id="name-digits-of-another-script"),
    ]


@pytest.mark.parametrize("replace, refused, unlabelled, silent", name_cases())
def test_odd_file_names_are_named_and_the_others_imported(
    scratch, empty_project, capsys, replace, refused, unlabelled, silent
):
    folder = scratch / f"case{next(_counter)}"
    root = write_icbhi(folder, replace)
    expect = base_expect(root, skip=unlabelled)
    expect.cycles |= {name: [] for name in unlabelled}
    expect.audio |= {name: "missing" for name in silent}
    if refused is not None:
        expect.refused.add(root / refused)
        expect.errors.add((root / refused, None))
    check(capsys, empty_project, folder, ["icbhi", root], expect)


def test_an_explicit_metadata_path_that_is_not_there_refuses_the_import(scratch, empty_project, capsys):
    folder = scratch / f"case{next(_counter)}"
    root = write_icbhi(folder, {})
    for option, target in (("--split", folder / "nope.txt"), ("--demographics", root / "ICBHI_final_database")):
        case = folder / option.strip("-")
        case.mkdir()
        expect = Expect(refused_import=(target, None))
        check(capsys, empty_project, case, ["icbhi", root, option, target], expect)


# -- the folder importer and its labels CSV -------------------------------------------------------------
CSV_ROWS = "file,start,end,label\n" + "".join(
    f"a.wav,{s},{e},{label}\n" for s, e, label in ((0.5, 1.5, "normal"), (1.5, 3.0, "crackle"), (3.0, 4.5, "both"))
) + "b.wav,0.2,1.2,wheeze\nsub/c.wav,1.0,2.0,normal\n"


def write_folder(folder: Path, csv_bytes: bytes | None, extra: dict | None = None) -> tuple[Path, Path | None]:
    root = folder / "recordings"
    (root / "sub").mkdir(parents=True)
    for relative in ("a.wav", "b.wav", "sub/c.wav"):
        (root / relative).write_bytes(WAVS[B])
    for relative, data in (extra or {}).items():
        path = root / os.fsdecode(relative) if isinstance(relative, bytes) else root / relative
        path.write_bytes(data)
    labels = None
    if csv_bytes is not None:
        labels = folder / "labels.csv"
        labels.write_bytes(csv_bytes)
    return root, labels


def csv_records(text: str):
    """(line, row) of a CSV, and (line, None) for a row csv cannot read; as the importer goes on past those."""
    import csv

    reader = csv.reader(io.StringIO(text))
    while True:
        before = reader.line_num
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            if reader.line_num == before:
                raise LookupError(reader.line_num or 1) from None
            row = None
        yield reader.line_num or 1, row


def recording_of(named: str, root: Path, labels: Path) -> str | None:
    """The recording a CSV's file column names: by its name, path, file name or stem, or relative to the CSV."""
    for path in (root / "a.wav", root / "b.wav", root / "sub" / "c.wav"):
        name = path.relative_to(root).with_suffix("").as_posix()
        keys = {name, f"{name}.wav", path.name, path.stem, str(path), path.relative_to(labels.parent).as_posix()}
        if named in keys:
            return name
    return None


def expect_csv(data: bytes, labels: Path, root: Path) -> Expect:
    """A labels CSV as the folder importer reads it: bad rows named and skipped, and the import refused in
    one line when the file cannot be decoded, its header is unusable, or it has no row that can be read."""
    expect = Expect()
    text = decode(data)
    if text is None:
        expect.refused_import = (labels, None)
        return expect
    header, rows, bad = None, [], []
    try:
        for line, row in csv_records(text):
            if row is None:
                if header is None:
                    expect.refused_import = (labels, line)
                    return expect
                bad.append(line)
                continue
            if not row or all(not cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in row]
                named = [h for h in header if h]
                if not ({"file", "start", "end"} <= set(header) and (
                        "label" in header or {"crackle", "wheeze"} <= set(header))) or len(set(named)) < len(named):
                    expect.refused_import = (labels, line)
                    return expect
                continue
            read = read_csv_row(header, row)
            if read is None or not read[3]:
                bad.append(line)
            else:
                rows.append((line, *read))
    except LookupError as error:
        expect.refused_import = (labels, error.args[0])
        return expect
    if header is None or not rows:
        expect.refused_import = (labels, bad[0] if bad else None)
        return expect
    expect.errors |= {(labels, line) for line in bad}
    groups: dict[str, list] = {}
    for line, start, end, value, named in rows:
        groups.setdefault(named, []).append((line, start, end, value))
    per_recording: dict[str, list] = {}
    for named, items in groups.items():
        name = recording_of(named, root, labels)
        if name is None:
            expect.errors.add((labels, items[0][0]))
        else:
            per_recording.setdefault(name, []).extend(items)
    for name in ("a", "b", "sub/c"):
        expect.cycles[name] = screened(sorted(per_recording.get(name, [])), LENGTHS[B], labels, expect)
    return expect


def csv_cases():
    from test_hostile_labels import _byte_mutations, _field_mutations, _structure_mutations

    lines = CSV_ROWS.splitlines()
    found = list(_byte_mutations(CSV_ROWS))
    found += [(n, ("\n".join(m) + "\n").encode()) for n, m in _field_mutations("csv", lines, 2)]
    found += [(n, ("\n".join(m[:-1] if n == "extra-field" else m) + "\n").encode())
              for n, m in _structure_mutations("csv", lines, 2)]
    found += [
        ("semicolon-header", CSV_ROWS.replace(",", ";").encode()),
        ("header-without-file", CSV_ROWS.replace("file,", "name,", 1).encode()),
        ("unknown-file", CSV_ROWS.replace("b.wav,", "zzz.wav,").encode()),
        ("empty-file-cell", CSV_ROWS.replace("b.wav,", ",").encode()),
        ("only-a-header", b"file,start,end,label\n"),
    ]
    return [pytest.param(data, id=f"csv-{name}") for name, data in found]


@pytest.mark.parametrize("data", csv_cases())
def test_a_hostile_labels_csv(scratch, empty_project, capsys, data):
    folder = scratch / f"case{next(_counter)}"
    root, labels = write_folder(folder, data)
    expect = expect_csv(data, labels, root)
    check(capsys, empty_project, folder, ["folder", root, "--labels", labels], expect)


def folder_cases():
    flac = io.BytesIO()
    sf.write(flac, np.zeros(RATE, dtype=np.float32), RATE, format="FLAC")
    return [  # (files to add, the files refused with the line named, recordings added with them)
        pytest.param({b"caf\xe9.wav": WAVS[B]}, [("caf\\xe9.wav", None)], [], id="folder-name-not-utf8"),
        pytest.param({"a.flac": flac.getvalue()}, [("a.wav", None)], [], id="folder-a-flac-beside-a-wav"),
        pytest.param({"._a.wav": b"\x00\x05\x16\x07" + b"\x00" * 60}, [], [], id="folder-apple-double"),
        pytest.param({"sub/a.wav": WAVS[B]}, [], ["sub/a"], id="folder-same-name-in-a-sub-folder"),
        pytest.param({"a.txt": ANNOTATION_A.encode()}, [], [], id="folder-sidecar-past-the-end"),
        pytest.param({"b.txt": b"\xff\xfe\x00\xd8"}, [("b.txt", None)], [], id="folder-sidecar-utf16-broken"),
        pytest.param({"b.txt": b"garbage\n\x00\x01\n"}, [("b.txt", 1)], [], id="folder-sidecar-garbage"),
        pytest.param({"b.txt": b""}, [], [], id="folder-sidecar-empty"),
    ]


@pytest.mark.parametrize("extra, refused, more", folder_cases())
def test_a_hostile_folder(scratch, empty_project, capsys, extra, refused, more):
    folder = scratch / f"case{next(_counter)}"
    root, _ = write_folder(folder, None, extra)
    expect = Expect(cycles={"a": [], "b": [], "sub/c": []} | {name: [] for name in more})
    for name, line in refused:
        expect.refused.add(root / name)
        expect.errors.add((root / name, line))
        if name.endswith(".txt"):
            expect.cycles.pop(Path(name).stem)
    if "a.txt" in extra:
        expect_annotation(extra["a.txt"], LENGTHS[B], root / "a.txt", "a", expect)
    check(capsys, empty_project, folder, ["folder", root], expect)


def test_an_empty_folder_is_one_error_naming_it(scratch, empty_project, capsys):
    folder = scratch / f"case{next(_counter)}"
    (folder / "nothing").mkdir(parents=True)
    expect = Expect(errors={(folder / "nothing", None)})
    check(capsys, empty_project, folder, ["folder", folder / "nothing"], expect)
