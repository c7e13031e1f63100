"""Patients and recordings: adding a recording with its patient and cycles in one transaction, and keeping
its audio honest.

Audio stays where the user keeps it; the project stores its path (relative where possible), its
content hash (sha256), and a stamp for a cheap check: size, modification time and a sampled hash. A
check compares the stamp, and hashes the whole file again only when the modification time moved (or
when asked): an in-place rewrite at the same size is caught without reading every file every time.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..vocab import ORIGINS
from .cycles import Fault, LiveSpan, screen
from .store import ProjectError, default_author, now

# Called with a cycle that breaks the cycle rule and why; the cycle is then left out.
FaultHandler = Callable[[object, Fault], None]

# The sampled hash reads this many blocks of this size, spread evenly from the file's start to its end
# (the whole file when it is smaller): 256 KiB per file, whatever its length.
SAMPLE_BLOCK = 1 << 16
SAMPLE_BLOCKS = 4


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def audio_stamp(path: str | os.PathLike) -> dict:
    """``size_bytes``, ``mtime_ns`` and ``sample_hash`` of a file: what a cheap check compares."""
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        size = info.st_size
        digest = hashlib.sha256(f"{size}\n".encode())
        if size <= SAMPLE_BLOCK * SAMPLE_BLOCKS:
            digest.update(handle.read())
        else:
            for index in range(SAMPLE_BLOCKS):
                handle.seek((size - SAMPLE_BLOCK) * index // (SAMPLE_BLOCKS - 1))
                digest.update(handle.read(SAMPLE_BLOCK))
    return {"size_bytes": size, "mtime_ns": info.st_mtime_ns, "sample_hash": digest.hexdigest()}


@dataclass(frozen=True)
class AudioVerdict:
    """What a check found of a recording's audio: a status of ``AUDIO_STATUSES`` and, unless ok, why."""

    status: str
    reason: str | None = None


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
        patient: dict | None = None,
        origin: str = "dataset",
        author: str | None = None,
        reason: str | None = None,
        on_fault: FaultHandler | None = None,
    ) -> tuple[int, list[int]]:
        """Insert a recording with its patient, its cycles and their ``import`` history rows, in one transaction.

        ``patient`` (fields of :meth:`save_patient`; by default only ``fields["patient_id"]``) is saved
        in the same transaction, so an interrupted import leaves no patient without its recordings.
        ``cycles`` have start, end, crackle, wheeze and line (of their label file, or None); ``audio``
        is the audio file, stored relative to the project. A cycle that breaks the cycle rule (against
        ``fields["duration"]`` and the cycles before it) raises ProjectError, or, given ``on_fault``, is
        handed to it and left out. Returns the recording's id and the ids of the cycles added.
        """
        if origin not in ORIGINS:
            raise ProjectError(f"unknown cycle origin {origin!r}")
        stamp = now()
        fields = dict(fields)
        if audio is not None:
            fields["path"] = self.store_path(audio)
        fields.setdefault("imported_at", stamp)
        with self.transaction():
            self._save_patient_of(fields, patient)
            recording_id = int(self.db["recordings"].insert(fields).last_pk)
            cycle_ids = self._add_screened(
                recording_id, fields["name"], cycles, fields.get("duration"), (), origin, author, reason, on_fault,
                stamp,
            )
        return recording_id, cycle_ids

    def complete_recording(
        self,
        recording_id: int,
        changes: dict,
        cycles: Iterable = (),
        *,
        patient: dict | None = None,
        origin: str = "dataset",
        author: str | None = None,
        reason: str | None = None,
        on_fault: FaultHandler | None = None,
    ) -> list[int]:
        """A later import of a recording already here: its changed fields, its patient and the cycles it
        lacks, in one transaction. The cycles are checked against the recording's live cycles too.
        Returns the ids of the cycles added.
        """
        if origin not in ORIGINS:
            raise ProjectError(f"unknown cycle origin {origin!r}")
        with self.transaction():
            rec = self.recording(recording_id)
            if changes:
                self.db["recordings"].update(recording_id, changes)
            self._save_patient_of({**rec, **changes}, patient)
            live = [
                LiveSpan(row[1], row[2], f"cycle {row[0]}")
                for row in self.db.execute(
                    'SELECT id, start, "end" FROM cycles WHERE recording_id = ? AND deleted = 0', [recording_id]
                )
            ]
            duration = changes.get("duration", rec.get("duration"))
            return self._add_screened(
                recording_id, rec["name"], cycles, duration, live, origin, author, reason, on_fault, now()
            )

    def _save_patient_of(self, fields: dict, patient: dict | None) -> None:
        if patient is not None:
            self.save_patient(patient)
        elif fields.get("patient_id"):
            self.save_patient({"id": fields["patient_id"]})

    def _add_screened(
        self, recording_id, name, cycles, duration, live, origin, author, reason, on_fault, stamp
    ) -> list[int]:
        author = author or default_author()
        cycle_ids = []
        for cycle, fault in screen(cycles, duration, accepted=live):
            if fault is not None:
                if on_fault is None:
                    line = getattr(cycle, "line", None)
                    where = f"{name}, line {line}" if line else name
                    raise ProjectError(f"{where}: {fault.message}")
                on_fault(cycle, fault)
                continue
            cycle_ids.append(self._insert_cycle(recording_id, cycle, origin, author, "import", reason, stamp))
        return cycle_ids

    def update_recording(self, recording_id: int, changes: dict) -> None:
        with self.transaction():
            self.db["recordings"].update(recording_id, changes)

    # -- audio ------------------------------------------------------------------------------
    def verify_audio(self, recording: dict | int, rehash: bool = False) -> str:
        """Check that a recording's audio is where the project says and unchanged; stores and returns its status."""
        return self.examine_audio(recording, rehash).status

    def examine_audio(self, recording: dict | int, rehash: bool = False) -> AudioVerdict:
        """:meth:`verify_audio` with the reason for a status other than ok.

        The stamp (size, modification time, sampled hash) decides; the whole file is hashed again when
        its modification time moved, when the recording has no stamp yet (a file made before stamps,
        which this fills in), or with ``rehash``.
        """
        rec = self.recording(recording) if isinstance(recording, int) else recording
        verdict, stamp = self._judge_audio(rec, rehash)
        changes = {"audio_status": verdict.status} if verdict.status != rec.get("audio_status") else {}
        if stamp and any(rec.get(key) != value for key, value in stamp.items()):
            changes.update(stamp)
        if changes:
            self.update_recording(rec["id"], changes)
        return verdict

    def _judge_audio(self, rec: dict, rehash: bool) -> tuple[AudioVerdict, dict | None]:
        path = self.audio_path(rec)
        if path is None:
            return AudioVerdict("missing", "no audio file was found at import"), None
        try:
            info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return AudioVerdict("missing", "file not found"), None
        except OSError as exc:
            return AudioVerdict("unreadable", exc.strerror or str(exc)), None
        if not stat.S_ISREG(info.st_mode):
            return AudioVerdict("unreadable", "not a regular file"), None
        if not rec.get("sha256"):
            return self._never_read(path), None
        if rec.get("size_bytes") is not None and info.st_size != rec["size_bytes"]:
            return AudioVerdict("changed", f"{info.st_size} bytes, {rec['size_bytes']} at import"), None
        try:
            stamp = audio_stamp(path)
            cheap = not rehash and rec.get("sample_hash") and rec.get("mtime_ns") == stamp["mtime_ns"]
            if cheap:
                if stamp["sample_hash"] != rec["sample_hash"]:
                    return AudioVerdict("changed", "content differs from the import (sampled hash)"), None
                return AudioVerdict("ok"), None
            if file_sha256(path) != rec["sha256"]:
                return AudioVerdict("changed", "content differs from the import (sha256)"), None
        except OSError as exc:
            return AudioVerdict("unreadable", exc.strerror or str(exc)), None
        return AudioVerdict("ok"), stamp

    @staticmethod
    def _never_read(path: Path) -> AudioVerdict:
        """A recording whose audio could not be read at import: why, or that it can be read now."""
        from ..audio import AudioError, audio_info, scan_samples  # local: opening a project needs no audio libraries

        try:
            scan_samples(path, audio_info(path))
        except AudioError as exc:
            text = str(exc)
            return AudioVerdict("unreadable", text.split(": ", 1)[1] if text.startswith(f"{path}: ") else text)
        return AudioVerdict("unreadable", "readable now, but never imported: run the import again to attach it")

    def relocate_audio(self, recording_id: int, new_path: str | os.PathLike) -> dict:
        """Point a recording at its audio file in a new place; refuses a file with other content."""
        from ..audio import audio_info, scan_samples  # local: opening a project needs no audio libraries

        rec = self.recording(recording_id)
        new_path = Path(new_path)
        info = audio_info(new_path)
        scan_samples(new_path, info)  # AudioError at a non-finite sample, as at import
        digest = file_sha256(new_path)
        if rec.get("sha256") and digest != rec["sha256"]:
            raise ProjectError(
                f"{new_path}: not the same audio as {rec['name']} (content differs); "
                "import it as a new recording instead"
            )
        fields = {
            "path": self.store_path(new_path),
            "sha256": digest,
            **audio_stamp(new_path),
            "audio_status": "ok",
            **info,
        }
        self.update_recording(recording_id, fields)
        return self.recording(recording_id)
