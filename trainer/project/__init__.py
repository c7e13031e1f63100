"""The project file: one SQLite database (through sqlite-utils) with an artifacts folder beside it.

The GUI and a worker process open the same file at once, so the database runs in WAL mode with a
busy timeout, and every write goes through :meth:`Project.transaction` (``BEGIN IMMEDIATE``): a crash
or a ``kill -9`` never leaves half a recording or half a run behind.

Cycles are never removed: a deleted cycle keeps its row (``deleted = 1``) so that model outputs keyed
by cycle id stay valid, and every change to a cycle is written, in the same transaction, to the
append-only ``cycle_edits`` table (triggers refuse updates and deletes there).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import getpass
import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Iterator

import sqlite_utils

from .schema import MIGRATIONS, SCHEMA_VERSION

LABELS = ("normal", "crackle", "wheeze", "both")
SPLITS = ("train", "test")
ORIGINS = ("dataset", "user", "model")
AUDIO_STATUSES = ("ok", "missing", "changed", "unreadable")
# Two cycles may share a boundary; anything more is an overlap.
OVERLAP_TOLERANCE = 1e-6


class ProjectError(Exception):
    """A project file that cannot be opened, or an edit the project refuses."""


def label_of(crackle: int, wheeze: int) -> int:
    """ICBHI label: (0,0) normal 0, (1,0) crackle 1, (0,1) wheeze 2, (1,1) both 3."""
    return int(bool(crackle)) + 2 * int(bool(wheeze))


def flags_of(label: int | str) -> tuple[int, int]:
    """(crackle, wheeze) of a label given as 0-3 or a name."""
    if isinstance(label, str):
        key = label.strip().lower()
        if key not in LABELS:
            if key.isdigit():
                return flags_of(int(key))
            raise ValueError(f"unknown label {label!r} (expected one of {', '.join(LABELS)} or 0-3)")
        label = LABELS.index(key)
    if int(label) not in (0, 1, 2, 3):
        raise ValueError(f"unknown label {label!r} (expected 0-3)")
    return int(label) & 1, (int(label) >> 1) & 1


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def default_author() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# Each entry migrates the schema from version i to i + 1. Only add entries, never edit one:
# projects in the field were created by the earlier ones.


class Project:
    """An open project file. Use :meth:`create` or :meth:`open`; close it, or use it as a context."""

    def __init__(self, path: str | os.PathLike, *, _create: bool = False):
        self.path = Path(path).resolve()
        if not _create and not self.path.exists():
            raise ProjectError(f"{self.path}: no such project file (make one with `rsc new {path}`)")
        if _create and self.path.exists():
            raise ProjectError(f"{self.path}: already exists; open it instead of creating it")
        if not _create:
            with open(self.path, "rb") as handle:
                head = handle.read(16)
            if not head:
                raise ProjectError(f"{self.path}: empty file, not an RSC Studio project")
            if head != b"SQLite format 3\x00":
                raise ProjectError(f"{self.path}: not an RSC Studio project (not an SQLite file)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
        self.db = sqlite_utils.Database(conn)
        conn.execute("PRAGMA busy_timeout = 30000")
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ProjectError(f"{self.path}: not a readable project file ({exc})") from exc
        if mode.lower() != "wal":
            raise ProjectError(f"{self.path}: could not switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        self._depth = 0
        self._migrate()
        self.artifacts.mkdir(exist_ok=True)

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike) -> "Project":
        return cls(path, _create=True)

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Project":
        return cls(path)

    @classmethod
    def open_or_create(cls, path: str | os.PathLike) -> "Project":
        return cls(path, _create=not Path(path).exists())

    @property
    def artifacts(self) -> Path:
        return self.path.with_name(self.path.name + ".d")

    @property
    def root(self) -> Path:
        return self.path.parent

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """One atomic write. Nested calls join the outer transaction."""
        conn = self.db.conn
        if self._depth:
            self._depth += 1
            try:
                yield self.db
            finally:
                self._depth -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.db
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            self._depth = 0

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise ProjectError(
                f"{self.path}: made by a newer RSC Studio (schema {version}, this one knows {SCHEMA_VERSION})"
            )
        for target in range(version, SCHEMA_VERSION):
            with self.transaction():
                MIGRATIONS[target](self.db)
                self.db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", [str(target + 1)]
                )
                if target == 0:
                    self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('created_at', ?)", [now()])

    @property
    def schema_version(self) -> int:
        if "meta" not in self.db.table_names():
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    # -- paths ------------------------------------------------------------------------------
    def store_path(self, path: str | os.PathLike) -> str:
        """Path as stored: relative to the project's folder where possible, so both can move together."""
        path = Path(path).resolve()
        try:
            return os.path.relpath(path, self.root)
        except ValueError:  # another drive on Windows
            return str(path)

    def resolve_path(self, stored: str | None) -> Path | None:
        if not stored:
            return None
        path = Path(stored)
        return path if path.is_absolute() else (self.root / path).resolve()

    def audio_path(self, recording: dict | int) -> Path | None:
        rec = self.recording(recording) if isinstance(recording, int) else recording
        return self.resolve_path(rec.get("path"))

    # -- reading ----------------------------------------------------------------------------
    def query(self, sql: str, params: Iterable[Any] | dict = ()) -> list[dict]:
        return list(self.db.query(sql, params))

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

    def cycle(self, cycle_id: int) -> dict:
        rows = self.query("SELECT * FROM cycles WHERE id = ?", [cycle_id])
        if not rows:
            raise ProjectError(f"no cycle with id {cycle_id}")
        return rows[0]

    def cycles(
        self,
        recording_id: int | None = None,
        split: str | None = None,
        include_deleted: bool = False,
        with_audio: bool = False,
    ) -> list[dict]:
        """Cycles with their recording's name, split, device and audio status, in a stable order."""
        where, params = [], []
        if recording_id is not None:
            where.append("c.recording_id = ?")
            params.append(recording_id)
        if split is not None:
            where.append("r.split = ?")
            params.append(split)
        if not include_deleted:
            where.append("c.deleted = 0")
        if with_audio:
            where.append("r.audio_status = 'ok'")
        sql = (
            "SELECT c.*, r.name AS recording, r.split AS split, r.device AS device, r.patient_id AS patient_id, "
            "r.chest_location AS chest_location, r.audio_status AS audio_status "
            "FROM cycles c JOIN recordings r ON r.id = c.recording_id"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY r.name, c.start, c.id"
        )
        return self.query(sql, params)

    def patient(self, patient_id: str) -> dict | None:
        rows = self.query("SELECT * FROM patients WHERE id = ?", [patient_id])
        return rows[0] if rows else None

    def cycle_history(self, cycle_id: int | None = None, recording_id: int | None = None) -> list[dict]:
        if cycle_id is not None:
            rows = self.query("SELECT * FROM cycle_edits WHERE cycle_id = ? ORDER BY id", [cycle_id])
        elif recording_id is not None:
            rows = self.query("SELECT * FROM cycle_edits WHERE recording_id = ? ORDER BY id", [recording_id])
        else:
            rows = self.query("SELECT * FROM cycle_edits ORDER BY id")
        for row in rows:
            row["before"] = json.loads(row["before"]) if row["before"] else None
            row["after"] = json.loads(row["after"]) if row["after"] else None
        return rows

    # -- editing cycles (each call one transaction with its history entry) -------------------------
    _CYCLE_FIELDS = ("start", "end", "crackle", "wheeze", "label", "deleted")

    @staticmethod
    def _cycle_state(row: dict) -> dict:
        return {key: row[key] for key in Project._CYCLE_FIELDS}

    def _check_cycle(self, recording_id: int, start: float, end: float, ignore_id: int | None = None) -> None:
        if not end > start:
            raise ProjectError(f"a cycle must end after it starts (start {start:.3f} s, end {end:.3f} s)")
        if start < 0:
            raise ProjectError(f"a cycle cannot start before the recording ({start:.3f} s)")
        rec = self.recording(recording_id)
        if rec.get("duration") and end > rec["duration"] + 1e-3:
            raise ProjectError(
                f"{rec['name']}: a cycle cannot end at {end:.3f} s, past the end of the audio ({rec['duration']:.3f} s)"
            )
        clash = self.db.execute(
            'SELECT id, start, "end" FROM cycles WHERE recording_id = ? AND deleted = 0 AND id != ? '
            'AND start < ? - ? AND "end" > ? + ? LIMIT 1',
            [recording_id, ignore_id if ignore_id is not None else -1, end, OVERLAP_TOLERANCE, start, OVERLAP_TOLERANCE],
        ).fetchone()
        if clash:
            raise ProjectError(
                f"{rec['name']}: {start:.3f}-{end:.3f} s would overlap cycle {clash[0]} ({clash[1]:.3f}-{clash[2]:.3f} s)"
            )

    def _log_edit(self, cycle_id: int, recording_id: int, action: str, before, after, author, reason=None) -> None:
        self.db["cycle_edits"].insert(
            {
                "cycle_id": cycle_id,
                "recording_id": recording_id,
                "action": action,
                "before": json.dumps(before) if before is not None else None,
                "after": json.dumps(after) if after is not None else None,
                "author": author or default_author(),
                "at": now(),
                "reason": reason,
            }
        )

    def add_cycle(
        self,
        recording_id: int,
        start: float,
        end: float,
        crackle: int = 0,
        wheeze: int = 0,
        origin: str = "user",
        author: str | None = None,
        source_line: int | None = None,
        action: str = "create",
        check: bool = True,
    ) -> int:
        if origin not in ORIGINS:
            raise ProjectError(f"unknown cycle origin {origin!r}")
        with self.transaction():
            if check:
                self._check_cycle(recording_id, float(start), float(end))
            stamp = now()
            row = {
                "recording_id": recording_id,
                "start": float(start),
                "end": float(end),
                "crackle": int(bool(crackle)),
                "wheeze": int(bool(wheeze)),
                "label": label_of(crackle, wheeze),
                "origin": origin,
                "source_line": source_line,
                "deleted": 0,
                "edited": 0,
                "created_at": stamp,
                "updated_at": stamp,
            }
            cycle_id = self.db["cycles"].insert(row).last_pk
            self._log_edit(cycle_id, recording_id, action, None, self._cycle_state(row), author)
        return int(cycle_id)

    def update_cycle(self, cycle_id: int, author: str | None = None, reason: str | None = None, **changes) -> dict:
        """Change start, end, crackle, wheeze or label (which sets both flags); returns the new row."""
        unknown = set(changes) - {"start", "end", "crackle", "wheeze", "label"}
        if unknown:
            raise ProjectError(f"cannot change {', '.join(sorted(unknown))} of a cycle")
        with self.transaction():
            row = self.cycle(cycle_id)
            if row["deleted"]:
                raise ProjectError(f"cycle {cycle_id} is deleted; restore it before editing it")
            new = dict(row)
            if "label" in changes:
                new["crackle"], new["wheeze"] = flags_of(changes.pop("label"))
            for key in ("start", "end"):
                if key in changes:
                    new[key] = float(changes[key])
            for key in ("crackle", "wheeze"):
                if key in changes:
                    new[key] = int(bool(changes[key]))
            new["label"] = label_of(new["crackle"], new["wheeze"])
            before, after = self._cycle_state(row), self._cycle_state(new)
            if before == after:
                return row
            if (new["start"], new["end"]) != (row["start"], row["end"]):
                self._check_cycle(row["recording_id"], new["start"], new["end"], ignore_id=cycle_id)
            update = {k: new[k] for k in ("start", "end", "crackle", "wheeze", "label")}
            update.update(edited=1, updated_at=now())
            self.db["cycles"].update(cycle_id, update)
            self._log_edit(cycle_id, row["recording_id"], "update", before, after, author, reason)
            return self.cycle(cycle_id)

    def delete_cycle(self, cycle_id: int, author: str | None = None, reason: str | None = None) -> None:
        with self.transaction():
            row = self.cycle(cycle_id)
            if row["deleted"]:
                return
            self.db["cycles"].update(cycle_id, {"deleted": 1, "edited": 1, "updated_at": now()})
            after = dict(self._cycle_state(row), deleted=1)
            self._log_edit(cycle_id, row["recording_id"], "delete", self._cycle_state(row), after, author, reason)

    def restore_cycle(self, cycle_id: int, author: str | None = None) -> None:
        with self.transaction():
            row = self.cycle(cycle_id)
            if not row["deleted"]:
                return
            self._check_cycle(row["recording_id"], row["start"], row["end"], ignore_id=cycle_id)
            self.db["cycles"].update(cycle_id, {"deleted": 0, "edited": 1, "updated_at": now()})
            after = dict(self._cycle_state(row), deleted=0)
            self._log_edit(cycle_id, row["recording_id"], "restore", self._cycle_state(row), after, author)

    def split_cycle(self, cycle_id: int, at: float, author: str | None = None) -> tuple[int, int]:
        """Cut a cycle in two at time ``at``; both halves keep its labels. Returns (left id, right id)."""
        with self.transaction():
            row = self.cycle(cycle_id)
            if not row["start"] < at < row["end"]:
                raise ProjectError(f"cannot split cycle {cycle_id} at {at:.3f} s: outside {row['start']:.3f}-{row['end']:.3f} s")
            end = row["end"]
            self.update_cycle(cycle_id, author=author, end=at, reason="split")
            right = self.add_cycle(row["recording_id"], at, end, row["crackle"], row["wheeze"], origin="user", author=author)
            return cycle_id, right

    # -- recordings ------------------------------------------------------------------------
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
            with self.transaction():
                self.db["recordings"].update(rec["id"], {"audio_status": status})
        return status

    def relocate_audio(self, recording_id: int, new_path: str | os.PathLike) -> dict:
        """Point a recording at its audio file in a new place; refuses a file with other content."""
        from ..audio import audio_info  # local: keeps `project` importable without soundfile

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
        with self.transaction():
            self.db["recordings"].update(recording_id, fields)
        return self.recording(recording_id)

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
