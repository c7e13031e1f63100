"""The open project file: the SQLite connection, its transactions and migrations, and the paths beside it.

The GUI and a worker process open the same file at once, so the database runs in WAL mode with a
busy timeout, and every write goes through :meth:`ProjectFile.transaction` (``BEGIN IMMEDIATE``): a
crash or a ``kill -9`` never leaves half a recording or half a run behind.

Opening checks the file before changing anything (:mod:`.filecheck`): that it is a project, that its
schema is not newer than this program's, and SQLite's ``quick_check``. A write that SQLite refuses
because the file is read-only, locked for longer than the busy timeout (``RSC_BUSY_TIMEOUT_S``, 30 s
by default) or on a full disk is rolled back and raised as one :class:`ProjectFileError` that names
the file and says what to do.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import getpass
import math
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Iterator

import sqlite_utils

from .errors import ProjectError, ProjectFileError
from .filecheck import file_fault, identify, quick_check, sqlite_uri
from .schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, V1_TABLES

__all__ = ["ProjectError", "ProjectFile", "ProjectFileError", "busy_timeout_s", "default_author", "now"]

ARTIFACTS_SUFFIX = ".d"
BUSY_TIMEOUT_ENV = "RSC_BUSY_TIMEOUT_S"
DEFAULT_BUSY_TIMEOUT_S = 30.0
# The files SQLite may keep beside a project: removed with a project whose creation failed.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def default_author() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def busy_timeout_s() -> float:
    """How long a write waits for another process's write lock: ``RSC_BUSY_TIMEOUT_S``, else 30 s."""
    text = os.environ.get(BUSY_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_BUSY_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (0 <= seconds < math.inf):
        raise ProjectError(f"{BUSY_TIMEOUT_ENV}={text!r}: expected a number of seconds, 0 or more")
    return seconds


class ProjectFile:
    """The connection and what every room of :class:`~trainer.project.Project` builds on."""

    def __init__(self, path: str | os.PathLike, *, _create: bool = False, busy_timeout: float | None = None):
        # realpath, not Path.resolve: a loop of symbolic links must reach identify() to be named as one.
        self.path = Path(os.path.realpath(path))
        self.busy_timeout = busy_timeout_s() if busy_timeout is None else float(busy_timeout)
        if _create:
            self._claim_new_file()
        else:
            identify(self.path)
        try:
            # mode=rw: never create a file here, even if this one vanished since it was checked.
            conn = sqlite3.connect(
                sqlite_uri(self.path, "rw"), uri=True, timeout=self.busy_timeout,
                isolation_level=None, check_same_thread=False,
            )
        except sqlite3.Error as exc:
            self._abandon(None, _create)
            raise self._opening_error(exc) from exc
        self.db = sqlite_utils.Database(conn)
        self._depth = 0
        try:
            self._prepare(conn, _create)
            self._migrate()
            self._make_artifacts()
        except BaseException as exc:
            self._abandon(conn, _create)
            if isinstance(exc, sqlite3.Error):
                raise self._opening_error(exc) from exc
            raise

    def _prepare(self, conn: sqlite3.Connection, create: bool) -> None:
        """Everything before the first write: checks of an existing file, then WAL mode."""
        if create:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")  # in the header before the WAL exists
        else:
            quick_check(conn, self.path)
            self._check_schema()
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise ProjectFileError(f"{self.path}: could not switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")

    def _check_schema(self) -> None:
        """A version this program knows, and the tables that version has (a file edited by another tool may not)."""
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise ProjectFileError(
                f"{self.path}: made by a newer RSC Studio (schema {version}, this one knows {SCHEMA_VERSION}); "
                "open it with that version"
            )
        # No version and no tables is a `rsc new` cut short: the migrations finish it.
        tables = set(self.db.table_names())
        missing = sorted(V1_TABLES - tables) if version else []
        if missing or (not version and tables):
            what = f"its {', '.join(missing)} table(s) are missing" if missing else "its tables have no schema version"
            raise ProjectFileError(
                f"{self.path}: not a usable RSC Studio project ({what}; was it edited by another tool?)"
            )

    def _claim_new_file(self) -> None:
        """Create the empty file exclusively, so two `rsc new` at once cannot both think they made it."""
        parents = (self.path.parent, *self.path.parent.parents)
        self._made_folders = [folder for folder in parents if not folder.exists()]  # deepest first
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise ProjectFileError(f"{self.path}: already exists; open it instead of creating it") from None
        except OSError as exc:
            self._remove_made_folders()
            raise ProjectFileError(f"cannot create {self.path}: {exc.strerror} (is its folder writable?)") from None

    def _make_artifacts(self) -> None:
        try:
            self.artifacts.mkdir(exist_ok=True)
        except OSError as exc:
            raise ProjectFileError(
                f"{self.path}: cannot make its artifacts folder {self.artifacts} ({exc.strerror})"
            ) from None

    def _abandon(self, conn: sqlite3.Connection | None, created: bool) -> None:
        """Close after a failed open; a project that failed to be created leaves no file behind."""
        if conn is not None:
            conn.close()
        if not created:
            return
        for suffix in ("", *SQLITE_SIDE_FILES):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")
        self._remove_made_folders()

    def _remove_made_folders(self) -> None:
        for folder in self._made_folders:
            with contextlib.suppress(OSError):
                folder.rmdir()

    def _opening_error(self, exc: sqlite3.Error) -> ProjectFileError:
        return file_fault(exc, self.path, self.busy_timeout) or ProjectFileError(
            f"{self.path}: not a readable project file ({exc})"
        )

    @contextlib.contextmanager
    def file_faults(self) -> Iterator[None]:
        """SQLite's refusals of the file itself (read-only, locked, full, damaged) as ProjectFileError."""
        try:
            yield
        except sqlite3.Error as exc:
            mapped = file_fault(exc, self.path, self.busy_timeout)
            if mapped is None:
                raise
            raise mapped from exc

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, *, busy_timeout: float | None = None):
        return cls(path, _create=True, busy_timeout=busy_timeout)

    @classmethod
    def open(cls, path: str | os.PathLike, *, busy_timeout: float | None = None):
        """Open an existing project; ``busy_timeout`` (seconds) overrides ``RSC_BUSY_TIMEOUT_S``."""
        return cls(path, busy_timeout=busy_timeout)

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, *, busy_timeout: float | None = None):
        return cls(path, _create=not os.path.lexists(path), busy_timeout=busy_timeout)

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
        """One atomic write. Nested calls join the outer transaction.

        The outermost call rolls back on any exception, and raises SQLite's refusals of the file itself
        as :class:`ProjectFileError` (so an importer's handler for a bad row does not swallow them).
        """
        conn = self.db.conn
        if self._depth:
            self._depth += 1
            try:
                yield self.db
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            with self.file_faults():
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.db
                    conn.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
        finally:
            self._depth = 0

    def _rollback(self) -> None:
        # SQLite has already rolled back after some errors (a full disk); a second ROLLBACK would
        # fail and hide the error that matters.
        if self.db.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.db.conn.execute("ROLLBACK")

    def _migrate(self) -> None:
        for target in range(self.schema_version, SCHEMA_VERSION):
            with self.transaction():
                if self.schema_version > target:  # another process (the app, a worker) got the lock first
                    continue
                MIGRATIONS[target](self.db)
                self.db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", [str(target + 1)]
                )
                if target == 0:
                    self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('created_at', ?)", [now()])
        if self.db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            with self.transaction():  # a current file rebuilt by `sqlite3 .recover`, which drops the id
                self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    @property
    def schema_version(self) -> int:
        if "meta" not in self.db.table_names():
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            return 0
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise ProjectFileError(f"{self.path}: not a readable project file (schema version {row[0]!r})") from None

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
