"""The open project file: the SQLite connection, its transactions and migrations, and the paths beside it.

The GUI and a worker process open the same file at once, so the database runs in WAL mode with a
busy timeout, and every write goes through :meth:`ProjectFile.transaction` (``BEGIN IMMEDIATE``): a
crash or a ``kill -9`` never leaves half a recording or half a run behind.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import getpass
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Iterator

import sqlite_utils

from .schema import MIGRATIONS, SCHEMA_VERSION

ARTIFACTS_SUFFIX = ".d"


class ProjectError(Exception):
    """A project file that cannot be opened, or an edit the project refuses."""


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def default_author() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


class ProjectFile:
    """The connection and what every room of :class:`~trainer.project.Project` builds on."""

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
    def create(cls, path: str | os.PathLike):
        return cls(path, _create=True)

    @classmethod
    def open(cls, path: str | os.PathLike):
        return cls(path)

    @classmethod
    def open_or_create(cls, path: str | os.PathLike):
        return cls(path, _create=not Path(path).exists())

    @staticmethod
    def artifacts_of(project_path: str | os.PathLike) -> Path:
        """The artifacts folder beside a project file (checkpoints, feature caches, logs), open or not."""
        path = Path(project_path)
        return path.with_name(path.name + ARTIFACTS_SUFFIX)

    @property
    def artifacts(self) -> Path:
        return self.artifacts_of(self.path)

    @property
    def root(self) -> Path:
        return self.path.parent

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self):
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

    # -- reading ----------------------------------------------------------------------------
    def query(self, sql: str, params: Iterable[Any] | dict = ()) -> list[dict]:
        return list(self.db.query(sql, params))
