"""What every importer shares: reading text and label files, probing audio, completing a recording already here.

A recording with its patient and its cycles (and their history rows) is written by
:meth:`Project.add_recording` in one transaction, so an import that is killed leaves whole recordings
only, and the next run of the same import adds what is missing. A recording already in the project is
completed, never re-annotated: a later import may attach audio that was missing, fill metadata that
was empty, and add the cycles of its label file that the project lacks (a line fixed since the last
run, a file that was unreadable then), but only while no one has edited the recording's cycles: the
user's edits win.
"""

from __future__ import annotations

from pathlib import Path

from ..audio import FULL_SCALE_MARGIN, AudioError, audio_info, scan_samples
from ..labelfiles import ErrorHandler, Interval, LabelError, parse_csv, parse_icbhi, read_text
from ..project import Fault, FaultHandler, Project, ends_past, file_sha256, same_span
from ..project.recordings import audio_stamp
from ..vocab import LABELS
from .report import ImportRefused, ImportReport

# Metadata a later import may fill in where the project has none.
FILLABLE = (
    "split", "patient_id", "device", "chest_location", "acquisition_mode", "recording_index", "annotation_path", "source",
)
AUDIO_FIELDS = (
    "sample_rate", "channels", "subtype", "frames", "duration", "sha256", "size_bytes", "mtime_ns", "sample_hash",
    "audio_status",
)


def read_text_lines(path: Path) -> list[str]:
    """Lines of a text file with CRLF and a byte-order mark handled."""
    return read_text(path).splitlines()


def read_metadata_lines(path: Path) -> list[str]:
    """Lines of a file the whole import rests on (split, demographics); ImportRefused when it cannot be read."""
    try:
        lines = read_text_lines(path)
    except LabelError as error:
        raise ImportRefused(path, None, f"{error.message}; nothing imported") from None
    if not any(line.strip() for line in lines):
        raise ImportRefused(path, None, "empty file; nothing imported (give the right file, or move this one away)")
    return lines


def refuse_unread(path: Path, lines_read: int, errors: list) -> None:
    """ImportRefused when a file the whole import rests on had lines and none of them could be read."""
    if errors and not lines_read:
        first = errors[0]
        raise ImportRefused(
            path, first.line,
            f"no line could be read ({first.message}; {len(errors)} bad lines in all); nothing imported",
        )


def skip_bad_lines(report: ImportReport, what: str = "line") -> ErrorHandler:
    """A label parser's ``on_error`` for an import: report the line and go on."""
    return lambda error: report.error(error.file, error.line, f"{error.message}; {what} skipped")


def read_annotation(path: Path, report: ImportReport) -> list[Interval] | None:
    """The cycles of an ICBHI annotation file, bad lines reported and skipped; None, reported as refused,
    when nothing in it can be read (then nothing of its recording is imported)."""
    try:
        text = read_text(path)
    except LabelError as error:
        report.refuse(path, None, f"{error.message}; its recording is not imported")
        return None
    errors: list[LabelError] = []
    items = parse_icbhi(text, str(path), on_error=errors.append)
    if errors and not items:
        first = errors[0]
        report.refuse(
            path, first.line,
            f"no line could be read ({first.message}; {len(errors)} bad lines in all); its recording is not imported",
        )
        return None
    for error in errors:
        report.error(error.file, error.line, f"{error.message}; line skipped")
    if not items:
        report.warning(path, None, "holds no cycles; its recording is imported unlabelled")
    return items


def read_labels_table(path: Path, report: ImportReport) -> list[Interval]:
    """The rows of a labels CSV, bad rows reported and skipped.

    ImportRefused when the file cannot be read, its header is unusable, or it has rows and none of
    them can be read: importing the recordings it labels without their labels would lose them silently.
    """
    try:
        text = read_text(path)
        errors: list[LabelError] = []
        rows = parse_csv(text, str(path), on_error=errors.append, need_file=True)
    except LabelError as error:
        raise ImportRefused(path, error.line, f"{error.message}; nothing imported") from None
    refuse_unread(path, len(rows), errors)
    if not rows:
        raise ImportRefused(path, None, "holds a header but no rows; nothing imported")
    for error in errors:
        report.error(error.file, error.line, f"{error.message}; row skipped")
    return rows


def _fault_words(fault: Fault) -> str:
    """A broken cycle rule in an import report's words."""
    span = f"{fault.start:g}-{fault.end:g} s"
    if fault.kind == "range":
        return f"{fault.message}; skipped"
    if fault.kind == "order":
        return f"cycle ends ({fault.end:g} s) at or before it starts ({fault.start:g} s); skipped"
    if fault.kind == "before_start":
        return f"cycle starts before the recording ({fault.start:g} s); skipped"
    if fault.kind == "past_end":
        return f"cycle {span} ends past the end of the audio ({fault.duration:.3f} s); skipped"
    return f"cycle {span} overlaps {fault.other_name} ({fault.other[0]:g}-{fault.other[1]:g} s); skipped"


def skip_bad_cycles(report: ImportReport, label_file: Path) -> FaultHandler:
    """:meth:`Project.add_recording`'s ``on_fault`` for an import: report the cycle's line and leave it out."""
    return lambda cycle, fault: report.error(label_file, cycle.line, _fault_words(fault))


def probe_audio(path: Path | None, report: ImportReport) -> dict:
    """Recording fields for an audio file: its format, hash and stamp when usable, else a status and a message.

    Float files are read once through (:func:`~trainer.audio.scan_samples`): one NaN among a
    recording's samples would make all its features, and then a training loss, NaN.
    """
    if path is None:
        return {"audio_status": "missing"}
    try:
        info = audio_info(path)
        peak = scan_samples(path, info)
        fields = {**info, "sha256": file_sha256(path), **audio_stamp(path), "audio_status": "ok"}
    except AudioError as exc:
        report.error(path, None, f"{_reason(exc)}; the recording keeps its annotations, audio marked unreadable")
        return {"audio_status": "unreadable"}
    except OSError as exc:
        report.error(path, None, f"cannot read ({exc.strerror or exc}); the recording keeps its annotations, "
                                 "audio marked unreadable")
        return {"audio_status": "unreadable"}
    if peak is not None and peak > FULL_SCALE_MARGIN:
        report.warning(
            path, None,
            f"float samples reach {peak:g}, far beyond full scale (1.0): written in integer scale? Its features "
            "will be louder than every other recording's",
        )
    return fields


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text


def complete_existing(
    project: Project,
    existing: dict,
    fields: dict,
    audio: Path | None,
    cycles: list[Interval],
    label_file: Path | None,
    report: ImportReport,
    author: str | None = None,
    patient: dict | None = None,
) -> str:
    """Attach audio that was missing, fill empty metadata, and add label-file cycles the project lacks, to a
    recording already in the project, in one transaction with its patient.

    Returns "attached", "labelled", "updated" or "unchanged"; cycles the project has are never touched.
    """
    changes: dict = {}
    outcome = "unchanged"
    if fields.get("audio_status") == "ok" and existing.get("audio_status") != "ok":
        if existing.get("sha256") and existing["sha256"] != fields["sha256"]:
            report.warning(
                audio, None, f"{existing['name']} is already in the project with other audio content; left as it was"
            )
        else:
            changes = {key: fields[key] for key in AUDIO_FIELDS}
            changes["path"] = project.store_path(audio)
            outcome = "attached"
    for key in FILLABLE:
        if key not in changes and fields.get(key) is not None and existing.get(key) in (None, ""):
            changes[key] = fields[key]
    missing = _missing_cycles(project, existing, cycles, label_file, report)
    added = project.complete_recording(
        existing["id"], changes, missing, patient=patient, origin="dataset", author=author,
        reason=fields.get("annotation_path") or existing.get("annotation_path"),
        on_fault=skip_bad_cycles(report, label_file),
    )
    if outcome == "attached":
        duration = fields["duration"]
        past = sum(ends_past(c["end"], duration) for c in project.cycles(recording_id=existing["id"]))
        if past:
            report.warning(
                audio, None,
                f"{past} cycle(s) of {existing['name']} end past the end of this audio ({duration:.3f} s); "
                "kept, check them",
            )
    if added:
        report.count("cycles", len(added))
        outcome = outcome if outcome == "attached" else "labelled"
    elif changes and outcome == "unchanged":
        outcome = "updated"
    return outcome


def _missing_cycles(
    project: Project, existing: dict, cycles: list[Interval], label_file: Path | None, report: ImportReport
) -> list[Interval]:
    """The label file's cycles that the recording lacks, when no one has edited its cycles; said otherwise."""
    live = project.cycles(recording_id=existing["id"])
    missing = []
    for cycle in cycles:
        same = next((row for row in live if same_span(row["start"], row["end"], cycle.start, cycle.end)), None)
        if same is None:
            missing.append(cycle)
        elif same["label"] != cycle.label and not same["edited"]:
            report.warning(
                label_file, cycle.line,
                f"says {cycle.label_name} where the project has {LABELS[same['label']]} (cycle {same['id']}); the "
                "project's label kept (apply the file's with `rsc labels import --mode merge`)",
            )
    if missing and project.has_user_edits(existing["id"]):
        report.warning(
            label_file, None,
            f"{len(missing)} of its cycles are not in the project, and were not added because {existing['name']}'s "
            "cycles have been edited there (add them with `rsc labels import --mode merge`)",
        )
        return []
    return missing
