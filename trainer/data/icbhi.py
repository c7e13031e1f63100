"""Import of the ICBHI 2017 database in its official layout.

One ``.wav`` and one ``.txt`` per recording, the split file (``ICBHI_challenge_train_test.txt``),
demographics and diagnosis, found in the given folder or its parent (or given explicitly). The quirks
of the published files are handled and reported, never hidden: a split-file name that differs from
the annotation file only in the device, CRLF line endings, blank lines, ``NA`` values.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from ..project import Project
from ..vocab import SPLITS, age_group
from .ingest import probe_audio, read_annotation, read_text_lines, skip_bad_cycles, update_existing
from .names import RecordingName, parse_name
from .report import ImportReport, ProgressFn

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
    if given is not None:
        return Path(given)
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    return None


def read_split_file(path: Path, report: ImportReport) -> dict[str, SplitEntry]:
    entries: dict[str, SplitEntry] = {}
    for number, raw in enumerate(read_text_lines(path), 1):
        if not raw.strip():
            continue
        parts = raw.split()
        if len(parts) != 2 or parts[1].lower() not in SPLITS:
            report.error(path, number, f"expected '<recording> train|test', got {raw.strip()!r}; line skipped")
            continue
        name, split = parts[0], parts[1].lower()
        if name in entries and entries[name].split != split:
            report.error(path, number, f"{name} is listed as {entries[name].split} on line {entries[name].line} and as {split} here; first kept")
            continue
        entries.setdefault(name, SplitEntry(name, split, number))
    return entries


def _number(value: str) -> float | None:
    return None if value.upper() in ("NA", "N/A", "") else float(value)


def read_demographics(path: Path, report: ImportReport) -> dict[str, dict]:
    """patient age sex adult-BMI child-weight child-height, whitespace separated, NA for missing."""
    patients = {}
    for number, raw in enumerate(read_text_lines(path), 1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 6:
            report.error(path, number, f"expected 6 fields (patient age sex bmi weight height), got {len(parts)}; line skipped")
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
            report.error(path, number, f"{exc}; line skipped")
    return patients


def read_diagnosis(path: Path, report: ImportReport) -> dict[str, str]:
    diagnoses = {}
    text = "\n".join(read_text_lines(path))
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            report.error(path, number, f"expected 'patient,diagnosis', got {','.join(row)!r}; line skipped")
            continue
        patient, diagnosis = row[0].strip(), row[1].strip()
        if number == 1 and not patient.isdigit():
            continue  # header
        diagnoses[patient] = diagnosis
    return diagnoses


def read_folds(path: Path, report: ImportReport) -> dict[str, int]:
    folds = {}
    for number, raw in enumerate(read_text_lines(path), 1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit():
            report.error(path, number, f"expected '<patient> <fold>', got {raw.strip()!r}; line skipped")
            continue
        folds[parts[0]] = int(parts[1])
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
    split_file = _find(SPLIT_FILE, folders, Path(split) if split else None)
    demo_file = _find(DEMOGRAPHICS_FILE, folders, Path(demographics) if demographics else None)
    diag_file = _find(DIAGNOSIS_FILE, folders, Path(diagnosis) if diagnosis else None)
    fold_file = _find(FOLDS_FILE, folders, Path(folds) if folds else None)

    with report.recording(project):
        split_entries: dict[str, SplitEntry] = {}
        if split_file is None or not split_file.is_file():
            report.error(
                split_file or directory / SPLIT_FILE, None,
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
        if demo_file and demo_file.is_file():
            patients = read_demographics(demo_file, report)
        else:
            report.warning(directory, None, f"{DEMOGRAPHICS_FILE} not found; patients imported without age and sex")
        diagnoses = read_diagnosis(diag_file, report) if diag_file and diag_file.is_file() else {}
        fold_of = read_folds(fold_file, report) if fold_file and fold_file.is_file() else {}

        annotations = sorted(p for p in audio_dir.glob("*.txt") if parse_name(p.stem))
        wavs = {p.stem: p for p in audio_dir.glob("*.wav")}
        stems = [p.stem for p in annotations] + sorted(set(wavs) - {p.stem for p in annotations})
        if not stems:
            report.error(audio_dir, None, "no ICBHI annotation (.txt) or audio (.wav) files found")

        patient_ids = set(patients) | set(diagnoses) | set(fold_of)
        patient_ids |= {parsed.patient for parsed in map(parse_name, stems) if parsed}
        _store_patients(project, patient_ids, patients, diagnoses, fold_of)

        for done, stem in enumerate(stems, 1):
            _import_one(project, stem, audio_dir, wavs.get(stem), split_entries, by_key, split_file, report, author)
            if progress is not None:
                progress(done, len(stems))
    return report


def _store_patients(project: Project, ids, patients, diagnoses, fold_of) -> None:
    with project.transaction():
        for pid in sorted(ids):
            fresh = dict(patients.get(pid, {"id": pid}))
            fresh["id"] = pid
            if pid in diagnoses:
                fresh["diagnosis"] = diagnoses[pid]
            if pid in fold_of:
                fresh["fold"] = fold_of[pid]
            project.save_patient(fresh)


def _import_one(project, stem, audio_dir, wav, split_entries, by_key, split_file, report, author) -> None:
    name = parse_name(stem)
    annotation = audio_dir / f"{stem}.txt"
    label_path = annotation if annotation.is_file() else wav
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
        report.count(update_existing(project, existing, fields, wav, report))
        return
    cycles = read_annotation(annotation, report) if annotation.is_file() else []
    if not annotation.is_file():
        report.warning(wav, None, "no annotation file beside it; imported for listening and annotating")
    _, added = project.add_recording(
        fields, cycles, audio=wav, origin="dataset", author=author, reason=fields["annotation_path"],
        on_fault=skip_bad_cycles(report, annotation),
    )
    report.count("added")
    report.count("cycles", len(added))
    if fields["audio_status"] != "ok":
        report.count(f"audio_{fields['audio_status']}")
