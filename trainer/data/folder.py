"""Import of a researcher's own recordings: any wav or flac under a folder, labelled or not.

Labels come from ICBHI-style ``.txt`` sidecars (same stem as the audio) or from one CSV with the
columns ``file,start,end`` and either ``label`` (normal/crackle/wheeze/both or 0-3) or
``crackle,wheeze``, optionally ``split`` and ``patient``. Without a split column, patients are split
at random (seeded) so that no patient is in both splits. Recordings without labels are imported for
listening and annotating.

The patient of a recording is, in order: the CSV's ``patient`` column, the patient number of an
ICBHI-style file name, the first sub-folder below the imported folder, the file's own name.

A labels CSV that cannot be read refuses the whole import (importing the recordings it labels without
their labels would lose them silently). A file whose name is not UTF-8, or that would make the same
recording name as another (``a.wav`` and ``a.flac``), is refused and named; the others go in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..labelfiles import Interval
from ..labelfiles.interval import printable
from ..project import Project
from .ingest import complete_existing, probe_audio, read_annotation, read_labels_table, skip_bad_cycles
from .names import parse_name
from .report import ImportRefused, ImportReport, ProgressFn

AUDIO_SUFFIXES = {".wav", ".flac"}
# macOS writes "._<name>" beside every file it copies to a foreign disk: metadata, not audio.
APPLE_DOUBLE = "._"


def find_audio(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def _usable_files(files: list[Path], directory: Path, project: Project, report: ImportReport) -> list[Path]:
    """The audio files that can become recordings; the others are named in the report."""
    usable, names = [], {}
    own = [path for path in files if project.artifacts in path.parents]
    if own:  # the demo's recordings, say: already in the project, and not the user's data
        report.warning(
            project.artifacts, None, f"{len(own)} audio files inside the project's own artifacts folder; skipped"
        )
    for path in (path for path in files if path not in own):
        if path.name.startswith(APPLE_DOUBLE):
            report.warning(path, None, "a macOS metadata file (._ prefix), not audio; skipped")
            continue
        try:
            str(path).encode("utf-8")
        except UnicodeEncodeError:
            report.refuse(path, None, "the path is not valid UTF-8 (the project stores paths as UTF-8); "
                                      "rename it and import again")
            continue
        name = recording_name(path, directory)
        if name in names:
            report.refuse(path, None, f"makes the same recording name {name!r} as {printable(names[name].name)}; "
                                      "rename one of them and import again")
            continue
        names[name] = path
        usable.append(path)
    return usable


def recording_name(path: Path, directory: Path) -> str:
    relative = path.relative_to(directory).with_suffix("")
    return relative.as_posix()


def group_by_file(rows: list[Interval], path: Path, report: ImportReport) -> dict[str, dict]:
    """A labels table's rows by their ``file`` column: {file: {"cycles": [...], "split", "patient", "line"}}."""
    per_file: dict[str, dict] = {}
    for row in rows:
        entry = per_file.setdefault(
            row.file, {"cycles": [], "split": row.split, "patient": row.patient, "line": row.line}
        )
        if row.split and entry["split"] and row.split != entry["split"]:
            report.error(
                path, row.line, f"{row.file} is {entry['split']} on line {entry['line']} and {row.split} here; first kept"
            )
        entry["cycles"].append(row)
    return per_file


def _match_csv(path: Path, name: str, labels: dict[str, dict], csv_folder: Path | None) -> dict | None:
    """The CSV rows of an audio file, named relative to the imported folder, to the CSV, or by file name."""
    keys = [name, Path(name).with_suffix(path.suffix).as_posix(), path.name, path.stem, str(path)]
    if csv_folder is not None:
        try:
            keys.append(path.relative_to(csv_folder.resolve()).as_posix())
        except ValueError:
            pass
    found = [labels.pop(key) for key in dict.fromkeys(keys) if key in labels]
    if not found:
        return None
    merged = found[0]
    for other in found[1:]:
        merged["cycles"] += other["cycles"]
        merged["split"] = merged["split"] or other["split"]
        merged["patient"] = merged["patient"] or other["patient"]
    return merged


def patient_split(patients: list[str], seed: int, test_fraction: float) -> dict[str, str]:
    """A reproducible patient-level split: the same patients and seed always give the same split."""
    unique = sorted(set(patients))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_test = int(round(test_fraction * len(unique)))
    if len(unique) > 1:
        n_test = min(max(n_test, 1), len(unique) - 1)
    test = {unique[i] for i in order[:n_test]}
    return {p: ("test" if p in test else "train") for p in unique}


def import_folder(
    project: Project,
    directory: str | Path,
    labels_csv: str | Path | None = None,
    seed: int = 0,
    test_fraction: float = 0.4,
    progress: ProgressFn | None = None,
    author: str | None = None,
) -> ImportReport:
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such folder")
    report = ImportReport("folder", str(directory))
    with report.recording(project):
        ImportRefused.unless_storable(directory)
        csv_labels: dict[str, dict] = {}
        if labels_csv is not None:
            labels_csv = Path(labels_csv)
            if not labels_csv.is_file():
                raise FileNotFoundError(f"{labels_csv}: labels file not found")
            csv_labels = group_by_file(read_labels_table(labels_csv, report), labels_csv, report)
        files = _usable_files(find_audio(directory), directory, project, report)
        if not files and not report.refused:
            report.error(directory, None, "no .wav or .flac files found")

        plans = []
        for path in files:
            name = recording_name(path, directory)
            parsed = parse_name(path.stem)
            entry = _match_csv(path, name, csv_labels, labels_csv.parent if labels_csv else None)
            relative = path.relative_to(directory)
            patient = (entry or {}).get("patient") or (parsed.patient if parsed else None)
            if patient is None:
                patient = relative.parts[0] if len(relative.parts) > 1 else path.stem
            plans.append((path, name, parsed, entry, patient))
        for leftover, entry in csv_labels.items():
            report.error(labels_csv, entry["line"], f"{leftover}: no such audio file under {directory}; its rows skipped")

        random_split = patient_split([p for *_, p in plans], seed, test_fraction)
        for done, (path, name, parsed, entry, patient) in enumerate(plans, 1):
            _import_one(project, path, name, parsed, entry, labels_csv, patient, random_split, report, author)
            if progress is not None:
                progress(done, len(plans))
    return report


def _import_one(project, path, name, parsed, entry, labels_csv, patient, random_split, report, author) -> None:
    split = (entry or {}).get("split") or random_split[patient]
    sidecar = path.with_suffix(".txt")
    fields = {
        "name": name,
        "patient_id": patient,
        "recording_index": parsed.index if parsed else None,
        "chest_location": parsed.location if parsed else None,
        "acquisition_mode": parsed.mode if parsed else None,
        "device": parsed.device if parsed else None,
        "split": split,
        "annotation_path": project.store_path(sidecar) if entry is None and sidecar.is_file() else None,
        "source": "folder",
    }
    if entry is not None:
        cycles, label_file = sorted(entry["cycles"], key=lambda c: c.line), labels_csv
        if sidecar.is_file():
            report.warning(sidecar, None, f"not read: the labels CSV has rows for {name}, and those are imported")
    elif sidecar.is_file():
        cycles, label_file = read_annotation(sidecar, report), sidecar
        if cycles is None:
            return  # refused, and said so
    else:
        cycles, label_file = [], path
    fields.update(probe_audio(path, report))
    existing = project.recording_by_name(name)
    if existing is not None:
        report.count(complete_existing(
            project, existing, fields, path, cycles, label_file, report, author, patient={"id": patient}
        ))
        return
    if not cycles:
        report.count("unlabelled")
    _, added = project.add_recording(
        fields, cycles, audio=path, patient={"id": patient}, origin="dataset", author=author,
        reason=fields["annotation_path"], on_fault=skip_bad_cycles(report, label_file),
    )
    report.count("added")
    report.count("cycles", len(added))
