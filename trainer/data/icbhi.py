"""Import of the ICBHI 2017 database in its official layout.

One ``.wav`` and one ``.txt`` per recording, the split file (``ICBHI_challenge_train_test.txt``),
demographics and diagnosis, found in the given folder or its parent (or given explicitly). The quirks
of the published files are handled and reported, never hidden: a split-file name that differs from
the annotation file only in the device, CRLF line endings, blank lines, ``NA`` values.

A split, demographics, diagnosis or folds file that is there but cannot be read (or of which no line
can be read) refuses the whole import before anything is written. Patients are written with their
recordings, in the same transaction: a patient named only in the demographics, with no recording
here, is not added.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from ..labelfiles import LabelError
from ..labelfiles.interval import is_decimal, printable
from ..project import Project
from ..vocab import SPLITS, age_group
from .ingest import complete_existing, probe_audio, read_annotation, read_metadata_lines, refuse_unread, skip_bad_cycles
from .names import RecordingName, parse_name
from .report import ImportRefused, ImportReport, ProgressFn

SPLIT_FILE = "ICBHI_challenge_train_test.txt"
DEMOGRAPHICS_FILE = "demographic_info.txt"
DIAGNOSIS_FILE = "patient_diagnosis.csv"
FOLDS_FILE = "patient_list_foldwise.txt"
AUDIO_FOLDER = "ICBHI_final_database"


@dataclass
class SplitEntry:
    name: str
    split: str
    line: int


def _find(name: str, folders: list[Path], given: Path | None) -> Path | None:
    """The file given (refused when it is not there: it was asked for), or the one found beside the data."""
    if given is not None:
        given = Path(given)
        if not given.is_file():
            what = "a folder, not a file" if given.is_dir() else "not a regular file" if given.exists() else "not found"
            raise ImportRefused(given, None, f"{what}; nothing imported")
        return given
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    return None


def read_split_file(path: Path, report: ImportReport) -> dict[str, SplitEntry]:
    entries: dict[str, SplitEntry] = {}
    bad = _BadLines(path, report)
    for number, raw in enumerate(read_metadata_lines(path), 1):
        if not raw.strip():
            continue
        parts = raw.split()
        if len(parts) != 2 or parts[1].lower() not in SPLITS:
            bad.add(number, f"expected '<recording> train|test', got {raw.strip()[:80]!r}")
            continue
        name, split = parts[0], parts[1].lower()
        if name in entries and entries[name].split != split:
            report.error(path, number, f"{name} is listed as {entries[name].split} on line {entries[name].line} and as {split} here; first kept")
            continue
        entries.setdefault(name, SplitEntry(name, split, number))
    bad.done(len(entries))
    return entries


class _BadLines:
    """A metadata file's bad lines: reported and skipped, unless no line at all could be read."""

    def __init__(self, path: Path, report: ImportReport):
        self.path, self.report, self.errors = path, report, []

    def add(self, line: int, message: str) -> None:
        self.errors.append(LabelError(self.path, line, message))

    def done(self, lines_read: int) -> None:
        refuse_unread(self.path, lines_read, self.errors)
        for error in self.errors:
            self.report.error(self.path, error.line, f"{error.message}; line skipped")


def _number(value: str) -> float | None:
    if value.upper() in ("NA", "N/A", ""):
        return None
    if not is_decimal(value):
        raise ValueError(f"{value[:40]!r} is not a number")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{value!r} is not a measurement")
    return number


def read_demographics(path: Path, report: ImportReport) -> dict[str, dict]:
    """patient age sex adult-BMI child-weight child-height, whitespace separated, NA for missing."""
    patients = {}
    bad = _BadLines(path, report)
    for number, raw in enumerate(read_metadata_lines(path), 1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 6:
            bad.add(number, f"expected 6 fields (patient age sex bmi weight height), got {len(parts)}")
            continue
        try:
            age = _number(parts[1])
            sex = None if parts[2].upper() == "NA" else parts[2].upper()
            patients[parts[0]] = {
                "id": parts[0],
                "age": age,
                "sex": sex,
                "bmi": _number(parts[3]),
                "child_weight": _number(parts[4]),
                "child_height": _number(parts[5]),
                "age_group": age_group(age),
            }
        except ValueError as exc:
            bad.add(number, str(exc))
    bad.done(len(patients))
    return patients


def read_diagnosis(path: Path, report: ImportReport) -> dict[str, str]:
    diagnoses = {}
    bad = _BadLines(path, report)
    for number, line in enumerate(read_metadata_lines(path), 1):
        try:
            row = next(csv.reader([line]), [])
        except csv.Error as exc:  # a NUL byte
            bad.add(number, f"not a CSV line ({exc})")
            continue
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            bad.add(number, f"expected 'patient,diagnosis', got {','.join(row)[:80]!r}")
            continue
        patient, diagnosis = row[0].strip(), row[1].strip()
        if number == 1 and not patient.isdigit():
            continue  # header
        diagnoses[patient] = diagnosis
    bad.done(len(diagnoses))
    return diagnoses


def read_folds(path: Path, report: ImportReport) -> dict[str, int]:
    folds = {}
    bad = _BadLines(path, report)
    for number, raw in enumerate(read_metadata_lines(path), 1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 2 or not (parts[1].isascii() and parts[1].isdigit()):
            bad.add(number, f"expected '<patient> <fold>', got {raw.strip()[:80]!r}")
            continue
        folds[parts[0]] = int(parts[1])
    bad.done(len(folds))
    return folds


def _resolve_split(
    name: RecordingName | None, stem: str, split_entries: dict[str, SplitEntry], by_key: dict, path: Path, report: ImportReport,
    split_file: Path | None,
) -> str | None:
    if split_file is None:
        return None
    entry = split_entries.get(stem)
    if entry is None and name is not None:
        candidates = by_key.get(name.key, [])
        if len(candidates) == 1:
            entry = candidates[0]
            other = parse_name(entry.name)
            report.warning(
                split_file, entry.line,
                f"lists {entry.name}, but the annotation file is {path.name}: matched on patient, recording, location "
                f"and mode; device is {name.device} in the file name"
                + (f" and {other.device} in the split file" if other else ""),
            )
        elif len(candidates) > 1:
            report.error(path, None, f"several split-file lines could match {stem}: {', '.join(c.name for c in candidates)}; no split set")
            return None
    if entry is None:
        report.warning(path, None, f"{stem} is not in the split file {split_file.name}; imported without a split")
        return None
    return entry.split


def import_icbhi(
    project: Project,
    directory: str | Path,
    split: str | Path | None = None,
    demographics: str | Path | None = None,
    diagnosis: str | Path | None = None,
    folds: str | Path | None = None,
    progress: ProgressFn | None = None,
    author: str | None = None,
) -> ImportReport:
    """Import (or complete) an ICBHI-layout folder. Safe to run again: nothing is duplicated or lost.

    ``progress(done, total)`` is called after each recording; an exception raised from it stops the
    import after a whole recording, and is re-raised after the import is recorded as cancelled.
    """
    directory = Path(directory).resolve()
    report = ImportReport("icbhi", str(directory))
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such folder")
    audio_dir = directory / AUDIO_FOLDER if (directory / AUDIO_FOLDER).is_dir() else directory
    folders = [audio_dir, audio_dir.parent] if audio_dir != directory else [directory, directory.parent]

    with report.recording(project):
        ImportRefused.unless_storable(audio_dir)
        split_file = _find(SPLIT_FILE, folders, split)
        demo_file = _find(DEMOGRAPHICS_FILE, folders, demographics)
        diag_file = _find(DIAGNOSIS_FILE, folders, diagnosis)
        fold_file = _find(FOLDS_FILE, folders, folds)
        split_entries: dict[str, SplitEntry] = {}
        if split_file is None:
            report.error(
                directory / SPLIT_FILE, None,
                f"split file {SPLIT_FILE} not found in {directory} or its parent; recordings imported without a split "
                "(give it with --split to set it later)",
            )
            split_file = None
        else:
            split_entries = read_split_file(split_file, report)
        by_key: dict[tuple, list[SplitEntry]] = {}
        for entry in split_entries.values():
            parsed = parse_name(entry.name)
            if parsed:
                by_key.setdefault(parsed.key, []).append(entry)

        patients: dict[str, dict] = {}
        if demo_file is not None:
            patients = read_demographics(demo_file, report)
        else:
            report.warning(directory, None, f"{DEMOGRAPHICS_FILE} not found; patients imported without age and sex")
        diagnoses = read_diagnosis(diag_file, report) if diag_file is not None else {}
        fold_of = read_folds(fold_file, report) if fold_file is not None else {}

        annotations = sorted(p for p in audio_dir.glob("*.txt") if parse_name(p.stem))
        wavs = _find_wavs(audio_dir, report)
        stems = [p.stem for p in annotations] + sorted(set(wavs) - {p.stem for p in annotations})
        if not stems and not report.refused:
            report.error(audio_dir, None, "no ICBHI annotation (.txt) or audio (.wav) files found")

        for done, stem in enumerate(stems, 1):
            patient = _patient_fields(parse_name(stem), patients, diagnoses, fold_of)
            _import_one(
                project, stem, audio_dir, wavs.get(stem), split_entries, by_key, split_file, report, author, patient
            )
            if progress is not None:
                progress(done, len(stems))
    return report


def _find_wavs(audio_dir: Path, report: ImportReport) -> dict[str, Path]:
    """The folder's .wav files by stem (the suffix in any case); names that cannot be stored are refused."""
    wavs: dict[str, Path] = {}
    for path in sorted(audio_dir.iterdir()):
        if path.suffix.lower() != ".wav" or not path.is_file():
            continue
        try:
            path.name.encode("utf-8")
        except UnicodeEncodeError:
            report.refuse(path, None, "the file name is not valid UTF-8 (the project stores names as UTF-8); "
                                      "rename it and import again")
            continue
        if path.stem in wavs:
            beside = printable(wavs[path.stem].name)
            report.refuse(path, None, f"a second audio file for {path.stem} (beside {beside}); skipped, remove one of them")
            continue
        wavs[path.stem] = path
    return wavs


def _patient_fields(name: RecordingName | None, patients, diagnoses, fold_of) -> dict | None:
    """What the metadata files say of a recording's patient (saved with the recording), or None."""
    if name is None:
        return None
    pid = name.patient
    fields = dict(patients.get(pid, {"id": pid}))
    fields["id"] = pid
    if pid in diagnoses:
        fields["diagnosis"] = diagnoses[pid]
    if pid in fold_of:
        fields["fold"] = fold_of[pid]
    return fields


def _import_one(project, stem, audio_dir, wav, split_entries, by_key, split_file, report, author, patient) -> None:
    name = parse_name(stem)
    annotation = audio_dir / f"{stem}.txt"
    label_path = annotation if annotation.is_file() else wav
    cycles = read_annotation(annotation, report) if annotation.is_file() else []
    if cycles is None:
        return  # refused, and said so
    if name is None:
        report.warning(label_path, None, f"{stem} is not an ICBHI file name; imported without patient and device")
    fields = {
        "name": stem,
        "patient_id": name.patient if name else None,
        "recording_index": name.index if name else None,
        "chest_location": name.location if name else None,
        "acquisition_mode": name.mode if name else None,
        "device": name.device if name else None,
        "split": _resolve_split(name, stem, split_entries, by_key, label_path, report, split_file),
        "annotation_path": project.store_path(annotation) if annotation.is_file() else None,
        "source": "icbhi",
    }
    fields.update(probe_audio(wav, report))
    existing = project.recording_by_name(stem)
    if existing is not None:
        report.count(complete_existing(project, existing, fields, wav, cycles, annotation, report, author, patient))
        return
    if not annotation.is_file():
        report.warning(wav, None, "no annotation file beside it; imported for listening and annotating")
    _, added = project.add_recording(
        fields, cycles, audio=wav, patient=patient, origin="dataset", author=author, reason=fields["annotation_path"],
        on_fault=skip_bad_cycles(report, annotation),
    )
    report.count("added")
    report.count("cycles", len(added))
    if fields["audio_status"] != "ok":
        report.count(f"audio_{fields['audio_status']}")
