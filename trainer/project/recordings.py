"""Patients and recordings: adding a recording with its cycles in one transaction, and keeping its audio honest.

Audio stays where the user keeps it; the project stores its path (relative where possible), size and
content hash, and says when a file has moved or changed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Iterable

from ..vocab import ORIGINS
from .cycles import Fault, screen
from .store import ProjectError, default_author, now

# Called with a cycle that breaks the cycle rule and why; the cycle is then left out.
FaultHandler = Callable[[object, Fault], None]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class Recordings:
    """The project's recording room."""

    # -- reading ----------------------------------------------------------------------------
    def recordings(self, split: str | None = None) -> list[dict]:
        if split:
            return self.query("SELECT * FROM recordings WHERE split = ? ORDER BY name", [split])
        return self.query("SELECT * FROM recordings ORDER BY name")

    def recording(self, recording_id: int) -> dict:
        rows = self.query("SELECT * FROM recordings WHERE id = ?", [recording_id])
        if not rows:
            raise ProjectError(f"no recording with id {recording_id}")
        return rows[0]

    def recording_by_name(self, name: str) -> dict | None:
        rows = self.query("SELECT * FROM recordings WHERE name = ?", [name])
        return rows[0] if rows else None

    def patient(self, patient_id: str) -> dict | None:
        rows = self.query("SELECT * FROM patients WHERE id = ?", [patient_id])
        return rows[0] if rows else None

    def audio_path(self, recording: dict | int) -> Path | None:
        rec = self.recording(recording) if isinstance(recording, int) else recording
        return self.resolve_path(rec.get("path"))

    # -- writing ----------------------------------------------------------------------------
    def save_patient(self, fields: dict) -> None:
        """Add a patient, or fill in what a patient already here lacks; a known value is never overwritten."""
        with self.transaction():
            existing = self.patient(fields["id"])
            if existing is None:
                self.db["patients"].insert(fields)
                return
            fill = {k: v for k, v in fields.items() if v is not None and existing.get(k) is None}
            if fill:
                self.db["patients"].update(fields["id"], fill)

    def add_recording(
        self,
        fields: dict,
        cycles: Iterable = (),
        *,
        audio: str | os.PathLike | None = None,
        origin: str = "dataset",
        author: str | None = None,
        reason: str | None = None,
        on_fault: FaultHandler | None = None,
    ) -> tuple[int, list[int]]:
        """Insert a recording with its cycles and their ``import`` history rows, in one transaction.

        ``cycles`` have start, end, crackle, wheeze and line (of their label file, or None); ``audio``
        is the audio file, stored relative to the project. A cycle that breaks the cycle rule (against
        ``fields["duration"]`` and the cycles before it) raises ProjectError, or, given ``on_fault``, is
        handed to it and left out. Returns the recording's id and the ids of the cycles added.
        """
        if origin not in ORIGINS:
            raise ProjectError(f"unknown cycle origin {origin!r}")
        stamp = now()
        author = author or default_author()
        fields = dict(fields)
        if audio is not None:
            fields["path"] = self.store_path(audio)
        fields.setdefault("imported_at", stamp)
        with self.transaction():
            recording_id = int(self.db["recordings"].insert(fields).last_pk)
            cycle_ids = []
            for cycle, fault in screen(cycles, fields.get("duration")):
                if fault is not None:
                    if on_fault is None:
                        line = getattr(cycle, "line", None)
                        where = f"{fields['name']}, line {line}" if line else fields["name"]
                        raise ProjectError(f"{where}: {fault.message}")
                    on_fault(cycle, fault)
                    continue
                cycle_ids.append(self._insert_cycle(recording_id, cycle, origin, author, "import", reason, stamp))
        return recording_id, cycle_ids

    def update_recording(self, recording_id: int, changes: dict) -> None:
        with self.transaction():
            self.db["recordings"].update(recording_id, changes)

    # -- audio ------------------------------------------------------------------------------
    def verify_audio(self, recording: dict | int, rehash: bool = False) -> str:
        """Check that a recording's audio is where the project says and unchanged; stores and returns its status."""
        rec = self.recording(recording) if isinstance(recording, int) else recording
        path = self.audio_path(rec)
        if path is None or not path.exists():
            status = "missing"
        elif rec.get("size_bytes") is not None and path.stat().st_size != rec["size_bytes"]:
            status = "changed"
        elif rehash and rec.get("sha256") and file_sha256(path) != rec["sha256"]:
            status = "changed"
        else:
            status = "ok" if rec.get("sha256") else "missing"
        if status != rec.get("audio_status"):
            self.update_recording(rec["id"], {"audio_status": status})
        return status

    def relocate_audio(self, recording_id: int, new_path: str | os.PathLike) -> dict:
        """Point a recording at its audio file in a new place; refuses a file with other content."""
        from ..audio import audio_info  # local: opening a project needs no audio libraries

        rec = self.recording(recording_id)
        new_path = Path(new_path)
        info = audio_info(new_path)
        digest = file_sha256(new_path)
        if rec.get("sha256") and digest != rec["sha256"]:
            raise ProjectError(
                f"{new_path}: not the same audio as {rec['name']} (content differs); "
                "import it as a new recording instead"
            )
        fields = {
            "path": self.store_path(new_path),
            "sha256": digest,
            "size_bytes": new_path.stat().st_size,
            "audio_status": "ok",
            **info,
        }
        self.update_recording(recording_id, fields)
        return self.recording(recording_id)
