"""What every importer shares: reading text and label files, probing audio, completing a recording already here.

A recording and its cycles (and their history rows) are written by :meth:`Project.add_recording` in
one transaction, so an import that is killed leaves whole recordings only, and the next run of the
same import adds what is missing. A recording already in the project is never re-annotated by an
import: the user's edits win. A later import may only attach audio that was missing, and fill
metadata that was empty.
"""

from __future__ import annotations

from pathlib import Path

from ..audio import AudioError, audio_info
from ..labelfiles import ErrorHandler, Interval, LabelError, parse_csv, parse_icbhi, read_text
from ..project import Fault, FaultHandler, Project, ends_past, file_sha256
from .report import ImportReport

# Metadata a later import may fill in where the project has none.
FILLABLE = (
    "split", "patient_id", "device", "chest_location", "acquisition_mode", "recording_index", "annotation_path", "source",
)
AUDIO_FIELDS = ("sample_rate", "channels", "subtype", "frames", "duration", "sha256", "size_bytes", "audio_status")


def read_text_lines(path: Path) -> list[str]:
    """Lines of a text file with CRLF and a byte-order mark handled."""
    return read_text(path).splitlines()


def skip_bad_lines(report: ImportReport, what: str = "line") -> ErrorHandler:
    """A label parser's ``on_error`` for an import: report the line and go on."""
    return lambda error: report.error(error.file, error.line, f"{error.message}; {what} skipped")


def read_annotation(path: Path, report: ImportReport) -> list[Interval]:
    """The cycles of an ICBHI annotation file; bad lines are reported and skipped."""
    return parse_icbhi(read_text(path), str(path), on_error=skip_bad_lines(report))


def read_labels_table(path: Path, report: ImportReport) -> list[Interval] | None:
    """The rows of a labels CSV (bad rows reported and skipped), or None when its header is unusable."""
    try:
        return parse_csv(read_text(path), str(path), on_error=skip_bad_lines(report, "row"), need_file=True)
    except LabelError as error:
        report.error(path, error.line, f"{error.message}; no labels read from it")
        return None


def _fault_words(fault: Fault) -> str:
    """A broken cycle rule in an import report's words."""
    span = f"{fault.start:g}-{fault.end:g} s"
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
    """Recording fields for an audio file: its format and hash when readable, else a status and a message."""
    if path is None:
        return {"audio_status": "missing"}
    try:
        info = audio_info(path)
    except AudioError as exc:
        report.error(path, None, f"{_reason(exc)}; the recording keeps its annotations, audio marked unreadable")
        return {"audio_status": "unreadable"}
    return {**info, "sha256": file_sha256(path), "size_bytes": path.stat().st_size, "audio_status": "ok"}


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text


def update_existing(project: Project, existing: dict, fields: dict, audio: Path | None, report: ImportReport) -> str:
    """Attach audio that was missing and fill empty metadata of a recording already in the project.

    Returns "attached", "updated" or "unchanged". Cycles are never touched here.
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
            duration = fields["duration"]
            past = sum(ends_past(c["end"], duration) for c in project.cycles(recording_id=existing["id"]))
            if past:
                report.warning(
                    audio, None,
                    f"{past} cycle(s) of {existing['name']} end past the end of this audio ({duration:.3f} s); "
                    "kept, check them",
                )
    for key in FILLABLE:
        if key not in changes and fields.get(key) is not None and existing.get(key) in (None, ""):
            changes[key] = fields[key]
    if changes:
        project.update_recording(existing["id"], changes)
        if outcome == "unchanged":
            outcome = "updated"
    return outcome
