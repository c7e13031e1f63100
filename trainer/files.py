"""Atomic files: a reader sees the old file or the whole new one, never a half-written one.

The one home for writing files that other processes (the app, a worker, a later resume) read. A temp
file carries the writer's pid, so :func:`remove_stale_temps` can tell a dead writer's leftovers (kill -9,
power loss) from a live writer's work in progress.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .processes import pid_alive

TMP_MARK = ".tmp-"


def temp_path(final: Path) -> Path:
    """A hidden sibling of ``final`` that names this process."""
    final = Path(final)
    return final.with_name(f".{final.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def fsync_dir(folder: Path) -> None:
    """Makes a rename in ``folder`` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yields a temp path to write; on success it is synced and renamed over ``final``, else removed."""
    final = Path(final)
    tmp = temp_path(final)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(final: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Calls ``write(tmp)`` and then moves ``tmp`` over ``final`` atomically."""
    with atomic_path(final) as tmp:
        write(tmp)
    return Path(final)


def write_text_atomic(final: str | os.PathLike, text: str) -> Path:
    return write_atomic(final, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(final: str | os.PathLike, data) -> Path:
    return write_text_atomic(final, json.dumps(data, indent=1))


def remove_stale_temps(folder: Path, max_age_s: float = 86400.0) -> None:
    """Removes temp files of writers that died; a live writer's files are left alone."""
    for path in Path(folder).glob(f"*{TMP_MARK}*"):
        try:
            pid = int(path.name.split(TMP_MARK, 1)[1].split("-", 1)[0])
        except (ValueError, IndexError):
            pid = -1
        try:
            old = time.time() - path.stat().st_mtime > max_age_s
            if old or pid == -1 or not pid_alive(pid):
                path.unlink()
        except OSError:
            pass
