"""What every importer shares: reading annotation lines, checking cycles, writing one recording atomically.

A recording and its cycles (and their history rows) are written in one transaction, so an import
that is killed leaves whole recordings only, and the next run of the same import adds what is missing.
A recording already in the project is never re-annotated by an import: the user's edits win. A
later import may only attach audio that was missing, and fill metadata that was empty.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..project import OVERLAP_TOLERANCE, Project, default_author, file_sha256, label_of, now
from ..audio import AudioError, audio_info
from .report import ImportReport

# Annotations may end a hair past the audio because of rounding in the published files.
PAST_END_TOLERANCE = 0.01


@dataclass
class CycleLine:
    line: int
    start: float
    end: float
    crackle: int
    wheeze: int


def read_text_lines(path: Path) -> list[str]:
    """Lines of a text file with CRLF and a BOM handled; undecodable bytes are replaced, not fatal."""
    data = path.read_bytes()
    text = data.decode("utf-8-sig", errors="replace")
    return text.splitlines()


def _flag(value: str) -> int:
    number = float(value)
    if number not in (0.0, 1.0):
        raise ValueError(f"flag must be 0 or 1, got {value!r}")
    return int(number)


def parse_annotation_file(path: Path, report: ImportReport) -> list[CycleLine]:
    """ICBHI annotation lines ``start end crackle wheeze`` (tabs or spaces); bad lines are reported and skipped."""
    cycles = []
    for number, raw in enumerate(read_text_lines(path), 1):
        if not raw.strip():
            continue
        parts = raw.split()
        if len(parts) != 4:
            report.error(path, number, f"expected 'start end crackle wheeze', got {raw.strip()!r}; line skipped")
            continue
        try:
            start, end = float(parts[0]), float(parts[1])
            crackle, wheeze = _flag(parts[2]), _flag(parts[3])
        except ValueError as exc:
            report.error(path, number, f"{exc}; line skipped")
            continue
        cycles.append(CycleLine(number, start, end, crackle, wheeze))
    return cycles


def check_cycles(cycles: list[CycleLine], duration: float | None, path: Path, report: ImportReport) -> list[CycleLine]:
    """Cycles that can enter the project: start < end, inside the audio, not overlapping an earlier line."""
    accepted: list[CycleLine] = []
    for cycle in cycles:
        if not cycle.end > cycle.start:
            report.error(path, cycle.line, f"cycle ends ({cycle.end:g} s) at or before it starts ({cycle.start:g} s); skipped")
            continue
        if cycle.start < 0:
            report.error(path, cycle.line, f"cycle starts before the recording ({cycle.start:g} s); skipped")
            continue
        if duration is not None and cycle.end > duration + PAST_END_TOLERANCE:
            report.error(
                path, cycle.line, f"cycle {cycle.start:g}-{cycle.end:g} s ends past the end of the audio ({duration:.3f} s); skipped"
            )
            continue
        clash = next(
            (c for c in accepted if cycle.start < c.end - OVERLAP_TOLERANCE and cycle.end > c.start + OVERLAP_TOLERANCE),
            None,
        )
        if clash:
            report.error(
                path,
                cycle.line,
                f"cycle {cycle.start:g}-{cycle.end:g} s overlaps line {clash.line} ({clash.start:g}-{clash.end:g} s); skipped",
            )
            continue
        accepted.append(cycle)
    return accepted


def probe_audio(path: Path | None, report: ImportReport) -> dict:
    """Recording fields for an audio file: path info and hash when readable, else a status and a message."""
    if path is None:
        return {"audio_status": "missing"}
    try:
        info = audio_info(path)
    except AudioError as exc:
        report.error(path, None, f"{_reason(exc)}; the recording keeps its annotations, audio marked unreadable")
        return {"audio_status": "unreadable", "_path": path}
    return {
        **info,
        "sha256": file_sha256(path),
        "size_bytes": path.stat().st_size,
        "audio_status": "ok",
        "_path": path,
    }


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text


def add_recording(
    project: Project, fields: dict, cycles: list[CycleLine], origin: str = "dataset", author: str | None = None
) -> int:
    """Insert a recording with its cycles and their 'import' history rows, in one transaction."""
    stamp = now()
    author = author or default_author()
    fields = dict(fields)
    audio = fields.pop("_path", None)
    if audio is not None:
        fields["path"] = project.store_path(audio)
    fields.setdefault("imported_at", stamp)
    with project.transaction():
        recording_id = project.db["recordings"].insert(fields).last_pk
        conn = project.db.conn
        for cycle in cycles:
            state = {
                "start": cycle.start,
                "end": cycle.end,
                "crackle": cycle.crackle,
                "wheeze": cycle.wheeze,
                "label": label_of(cycle.crackle, cycle.wheeze),
                "deleted": 0,
            }
            cursor = conn.execute(
                'INSERT INTO cycles (recording_id, start, "end", crackle, wheeze, label, origin, source_line, '
                "deleted, edited, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)",
                [recording_id, cycle.start, cycle.end, cycle.crackle, cycle.wheeze, state["label"], origin, cycle.line, stamp, stamp],
            )
            conn.execute(
                "INSERT INTO cycle_edits (cycle_id, recording_id, action, before, after, author, at, reason) "
                "VALUES (?, ?, 'import', NULL, ?, ?, ?, ?)",
                [cursor.lastrowid, recording_id, json.dumps(state), author, stamp, fields.get("annotation_path")],
            )
    return int(recording_id)


def update_existing(project: Project, existing: dict, fields: dict, report: ImportReport) -> str:
    """Attach audio that was missing and fill empty metadata of a recording already in the project.

    Returns "attached", "updated" or "unchanged". Cycles are never touched here.
    """
    changes: dict = {}
    outcome = "unchanged"
    if fields.get("audio_status") == "ok" and existing.get("audio_status") != "ok":
        if existing.get("sha256") and existing["sha256"] != fields["sha256"]:
            report.warning(
                fields["_path"], None,
                f"{existing['name']} is already in the project with other audio content; left as it was",
            )
        else:
            for key in ("sample_rate", "channels", "subtype", "frames", "duration", "sha256", "size_bytes", "audio_status"):
                changes[key] = fields[key]
            changes["path"] = project.store_path(fields["_path"])
            outcome = "attached"
            duration = fields["duration"]
            past = project.db.execute(
                'SELECT count(*) FROM cycles WHERE recording_id = ? AND deleted = 0 AND "end" > ?',
                [existing["id"], duration + PAST_END_TOLERANCE],
            ).fetchone()[0]
            if past:
                report.warning(
                    fields["_path"], None,
                    f"{past} cycle(s) of {existing['name']} end past the end of this audio ({duration:.3f} s); kept, check them",
                )
    for key, value in fields.items():
        if key.startswith("_") or key in changes or value is None:
            continue
        if key in ("split", "patient_id", "device", "chest_location", "acquisition_mode", "recording_index",
                   "annotation_path", "source") and existing.get(key) in (None, ""):
            changes[key] = value
    if changes:
        with project.transaction():
            project.db["recordings"].update(existing["id"], changes)
        if outcome == "unchanged":
            outcome = "updated"
    return outcome
