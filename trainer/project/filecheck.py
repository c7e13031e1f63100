"""Checks of the project file itself: is it a project, is it whole, and SQLite's failures in a user's words.

Nothing here writes. A file that is not a project (another program's database, a truncated copy, a
folder) is refused before the project switches it to WAL mode or adds a table, so it stays byte for byte
as it was, and no artifacts folder appears beside it.
"""

from __future__ import annotations

import errno
import os
import shlex
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

from .errors import ProjectFileError
from .schema import APPLICATION_ID, V1_TABLES

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_SIZE = 100
WAL_FORMAT = 2  # header byte 18 (the write version): 2 once a file is in WAL mode
# How many problems quick_check lists at most: the first few say enough, the rest cost time.
QUICK_CHECK_LIMIT = 5


def _foreign(path: Path, app_id: int) -> ProjectFileError:
    return ProjectFileError(
        f"{path}: not an RSC Studio project (another program's SQLite file, application id {app_id:#010x})"
    )


def identify(path: Path) -> None:
    """Raise :class:`ProjectFileError` unless ``path`` is an RSC Studio project (of any version).

    A project carries SQLite's application id :data:`~trainer.project.schema.APPLICATION_ID`; files
    made before schema 3, and files rebuilt by ``sqlite3 .recover`` (which drops the id), are known by
    their ``meta.schema_version`` and the tables every project has.
    """
    head, size = _header(path)
    if not head:
        raise ProjectFileError(f"{path}: empty file, not an RSC Studio project")
    if not head.startswith(SQLITE_MAGIC):
        raise ProjectFileError(f"{path}: not an RSC Studio project (not an SQLite file)")
    if len(head) < HEADER_SIZE:
        raise ProjectFileError(f"{path}: not an RSC Studio project (an SQLite header cut short at {len(head)} bytes)")
    wal_pending = Path(f"{path}-wal").exists()
    _check_layout(path, head, size, pending=wal_pending or Path(f"{path}-journal").exists())
    app_id = int.from_bytes(head[68:72], "big")
    if app_id == APPLICATION_ID:
        return
    if app_id:
        raise _foreign(path, app_id)
    # No id in the header: a project made before schema 3, one whose new id is still in the WAL, or not ours.
    try:
        _identify_by_tables(path, immutable=head[18] == WAL_FORMAT and not wal_pending)
    except sqlite3.Error as exc:
        raise file_fault(exc, path) or ProjectFileError(f"{path}: not a readable RSC Studio project ({exc})") from exc


def _check_layout(path: Path, head: bytes, size: int, *, pending: bool) -> None:
    """What the header and the size say without SQLite: cut short, added to, or not a header SQLite writes.

    SQLite writes whole pages, so a size that is not a whole number of them was cut or added to. Such a
    cut can drop part of a record that SQLite then reads as zeros, and ``quick_check`` cannot see that.
    While a -wal or -journal file is ``pending`` the file itself may be mid-way, so only the header counts.
    """
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    write_version, read_version = head[18], head[19]
    if page_size < 512 or page_size & (page_size - 1) or write_version not in (1, 2) or read_version not in (1, 2):
        raise damaged(path, f"its header is not one SQLite writes: page size {page_size}, "
                            f"file format {write_version}/{read_version}")
    if pending:
        return
    if size % page_size:
        raise damaged(path, f"{size} bytes is not a whole number of {page_size}-byte pages: cut short or added to")
    pages = int.from_bytes(head[28:32], "big")
    counted = head[92:96] == head[24:28]  # SQLite's sign that the page count in the header is current
    if counted and size // page_size < pages:
        raise damaged(path, f"cut short: its header counts {pages} pages, the file holds {size // page_size}")


def _header(path: Path) -> tuple[bytes, int]:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ProjectFileError(f"{path}: no such project file (make one with `rsc new {path}`)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ProjectFileError(f"{path}: a loop of symbolic links, not a project file") from None
        raise ProjectFileError(f"{path}: cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ProjectFileError(f"{path}: a folder, not a project file (a project is one .rsc file)")
    if not stat.S_ISREG(info.st_mode):
        raise ProjectFileError(f"{path}: not a regular file, so not a project file")
    try:
        with open(path, "rb") as handle:
            return handle.read(HEADER_SIZE), info.st_size
    except OSError as exc:
        raise ProjectFileError(f"{path}: cannot be read ({exc.strerror})") from None


def _identify_by_tables(path: Path, *, immutable: bool) -> None:
    # A read-only connection writes nothing; ``immutable`` keeps it from leaving -wal and -shm files
    # beside a WAL-mode file that has none (safe: with no -wal file, nobody has it open for writing).
    with closing(sqlite3.connect(sqlite_uri(path, "ro&immutable=1" if immutable else "ro"), uri=True)) as conn:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id == APPLICATION_ID:  # stamped by a migration whose pages are still in the WAL
            return
        if app_id:
            raise _foreign(path, app_id)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not V1_TABLES <= tables:
            raise ProjectFileError(
                f"{path}: not an RSC Studio project (an SQLite database without the project's tables)"
            )
        if conn.execute("SELECT 1 FROM meta WHERE key = 'schema_version'").fetchone() is None:
            raise ProjectFileError(f"{path}: not an RSC Studio project (no schema version in its meta table)")


def sqlite_uri(path: Path, mode: str) -> str:
    """A URI for an absolute path; the mode (``ro``, ``rw``) keeps SQLite from creating a missing file."""
    return f"{path.as_uri()}?mode={mode}"


def quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file with a damaged page before anything reads a wrong value from it or writes to it."""
    # A page too broken to walk raises instead ("malformed"): file_fault() words that one the same way.
    problems = [row[0] for row in conn.execute(f"PRAGMA quick_check({QUICK_CHECK_LIMIT})")]
    if problems != ["ok"]:
        # SQLite may put several problems, and a "*** in database main ***" banner, in one row.
        lines = [line.strip() for row in problems for line in row.splitlines()]
        detail = "; ".join(line for line in lines if line and not line.startswith("***"))
        raise damaged(path, "quick_check: " + (detail[:300] + " ..." if len(detail) > 300 else detail))


def damaged(path: Path, detail: str) -> ProjectFileError:
    recovered = path.with_name(f"{path.stem}-recovered{path.suffix}")
    return ProjectFileError(
        f"{path} is damaged ({detail}); restore a backup, or recover with "
        f"`sqlite3 {shlex.quote(str(path))} .recover | sqlite3 {shlex.quote(str(recovered))}`"
    )


def file_fault(exc: sqlite3.Error, path: Path, busy_timeout: float | None = None) -> ProjectFileError | None:
    """SQLite's failure of the file itself as one line that says what to do; None for any other error.

    Matched on SQLite's own wording of its result codes (``sqlite3_errstr``), which every Python
    version reports, extended codes included.
    """
    text = str(exc)
    if "database is locked" in text or "database table is locked" in text:
        wait = f" for more than {busy_timeout:g} s" if busy_timeout is not None else ""
        return ProjectFileError(
            f"another program holds a write lock on {path}{wait} (a running import or worker?); "
            "try again when it has finished, or wait longer with RSC_BUSY_TIMEOUT_S=SECONDS"
        )
    if "readonly database" in text:
        return ProjectFileError(
            f"{path} is read-only (the file or its folder cannot be written); open it writable or copy it "
            "(with its .d folder) somewhere you can write"
        )
    if "database or disk is full" in text:
        return ProjectFileError(
            f"the disk holding {path} is full; free some space and try again (the write that failed was undone)"
        )
    if "disk I/O error" in text:
        return ProjectFileError(
            f"{path}: the disk failed to read or write it (disk I/O error); is it full, failing or gone?"
        )
    if "malformed" in text or "file is not a database" in text:
        return damaged(path, text)
    if "unable to open database file" in text:
        return ProjectFileError(f"{path}: cannot be opened (its folder may be missing or unreadable)")
    return None
