"""The project file: one SQLite database (through sqlite-utils) with an artifacts folder beside it.

:class:`Project` is built from rooms, each owning its tables: ``store`` (the connection, transactions,
migrations and paths), ``recordings`` (patients, recordings and their audio), ``cycles`` (the cycle
rule and every cycle edit, with its history) and ``imports`` (the import log); ``classifications``
(what a model said of each cycle of a recording, with the model's identity and version) is functions. ``schema`` holds the
tables and the migrations that bring an older file up to date; ``filecheck`` tells a project from any
other file and puts SQLite's refusals of the file (damaged, read-only, locked, disk full) in words.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

from ..vocab import AUDIO_STATUSES, LABELS, SPLITS
from .classifications import store_classification, stored_classifications
from .cycles import CYCLE_TOLERANCE, Cycles, Fault, ends_past, overlaps, same_span, screen, span_fault
from .errors import ProjectError, ProjectFileError
from .filecheck import file_fault
from .imports import ImportLog
from .recordings import FaultHandler, Recordings, file_sha256
from .schema import APPLICATION_ID, SCHEMA_VERSION
from .store import ProjectFile, busy_timeout_s, default_author, now

__all__ = [
    "APPLICATION_ID", "CYCLE_TOLERANCE", "SCHEMA_VERSION", "Fault", "FaultHandler", "Project", "ProjectError",
    "ProjectFileError", "busy_timeout_s", "default_author", "ends_past", "file_fault", "file_sha256", "now",
    "overlaps", "same_span", "screen", "span_fault", "store_classification", "stored_classifications",
]


class Project(ProjectFile, Recordings, Cycles, ImportLog):
    """An open project file. Use :meth:`create` or :meth:`open`; close it, or use it as a context."""

    # -- summary ----------------------------------------------------------------------------
    def stats(self) -> dict:
        """Counts per split and class, recordings per split, missing audio, devices."""
        cycles: dict[str, dict[str, int]] = {}
        for row in self.db.query(
            "SELECT coalesce(r.split, 'unassigned') AS split, c.label AS label, count(*) AS n "
            "FROM cycles c JOIN recordings r ON r.id = c.recording_id WHERE c.deleted = 0 "
            "GROUP BY 1, 2"
        ):
            per = cycles.setdefault(row["split"], {name: 0 for name in LABELS} | {"total": 0})
            per[LABELS[row["label"]]] += row["n"]
            per["total"] += row["n"]
        for split in SPLITS:
            cycles.setdefault(split, {name: 0 for name in LABELS} | {"total": 0})
        total = {name: sum(per[name] for per in cycles.values()) for name in (*LABELS, "total")}
        recordings: dict[str, Any] = {split: 0 for split in SPLITS}
        for row in self.db.query("SELECT coalesce(split, 'unassigned') AS split, count(*) AS n FROM recordings GROUP BY 1"):
            recordings[row["split"]] = row["n"]
        recordings["total"] = self.db["recordings"].count
        for status in AUDIO_STATUSES:
            recordings[f"{status}_audio" if status != "ok" else "with_audio"] = self.db.execute(
                "SELECT count(*) FROM recordings WHERE audio_status = ?", [status]
            ).fetchone()[0]
        devices = {
            row["device"] or "unknown": {"recordings": row["n"], "cycles": row["c"]}
            for row in self.db.query(
                "SELECT r.device AS device, count(DISTINCT r.id) AS n, "
                "count(c.id) AS c FROM recordings r LEFT JOIN cycles c ON c.recording_id = r.id AND c.deleted = 0 "
                "GROUP BY r.device ORDER BY r.device"
            )
        }
        return {
            "cycles": cycles | {"all": total},
            "recordings": recordings,
            "patients": self.db["patients"].count,
            "devices": devices,
            "edited_cycles": self.db.execute("SELECT count(*) FROM cycles WHERE edited = 1").fetchone()[0],
        }

    def cycle_set_fingerprint(self, cycle_ids: Iterable[int] | None = None) -> str:
        """Hash of the given (or all live) cycles' ids, boundaries and audio content.

        Labels are left out on purpose: a relabel does not change the audio a feature cache holds.
        """
        digest = hashlib.sha256()
        if cycle_ids is None:
            rows = self.db.execute(
                'SELECT c.id, c.start, c."end", r.sha256 FROM cycles c JOIN recordings r ON r.id = c.recording_id '
                "WHERE c.deleted = 0 ORDER BY c.id"
            )
            for row in rows:
                digest.update(repr(tuple(row)).encode())
        else:
            ids = list(cycle_ids)
            lookup = {
                row[0]: row
                for row in self.db.execute(
                    'SELECT c.id, c.start, c."end", r.sha256 FROM cycles c JOIN recordings r ON r.id = c.recording_id'
                )
            }
            for cid in ids:
                digest.update(repr(tuple(lookup[cid])).encode())
        return digest.hexdigest()
