"""The ``checkpoints`` table: the sha256 and size of every checkpoint file a run has written.

A file is trusted only when its bytes hash to what was recorded right after it was written, so a
truncated, scrambled or replaced file (a full disk, a failing drive, a hand edit) is recognised before
a single tensor of it is read. The rows go with their run (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..project import Project, file_sha256, now


@dataclass(frozen=True)
class CheckpointRecord:
    file: str  # the name inside the run's folder
    epoch: int
    sha256: str
    size_bytes: int

    def fault(self, folder: Path) -> str | None:
        """Why the file in ``folder`` is not the one recorded (None: it is)."""
        path = folder / self.file
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return "missing"
        except OSError as exc:
            return f"unreadable ({exc.strerror or exc})"
        if not stat.S_ISREG(info.st_mode):
            return "not a file"
        size = info.st_size
        if size != self.size_bytes:
            return f"damaged: {size} bytes, {self.size_bytes} were written"
        try:
            digest = file_sha256(path)
        except OSError as exc:
            return f"unreadable ({exc.strerror or exc})"
        if digest != self.sha256:
            return "damaged: its sha256 differs from the one recorded when it was written"
        return None


def record_checkpoint(project: Project, run_id: str, file: str, epoch: int, sha256: str, size_bytes: int) -> CheckpointRecord:
    """Record a file the run just wrote and verified (replacing an earlier record of that name)."""
    record = CheckpointRecord(file, int(epoch), sha256, int(size_bytes))
    with project.transaction():
        project.db.execute(
            "INSERT OR REPLACE INTO checkpoints(run_id, file, epoch, sha256, size_bytes, written_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [run_id, record.file, record.epoch, record.sha256, record.size_bytes, now()],
        )
    return record


def checkpoint_records(project: Project, run_id: str) -> dict[str, CheckpointRecord]:
    """The recorded files of a run by name."""
    rows = project.db.execute(
        "SELECT file, epoch, sha256, size_bytes FROM checkpoints WHERE run_id = ? ORDER BY epoch, file", [run_id]
    )
    return {row[0]: CheckpointRecord(*row) for row in rows}


def forget_checkpoints(project: Project, run_id: str, files: list[str] | None = None) -> None:
    """Drop the records of the given files of a run (None: all of them)."""
    with project.transaction():
        if files is None:
            project.db.execute("DELETE FROM checkpoints WHERE run_id = ?", [run_id])
        else:
            for name in files:
                project.db.execute("DELETE FROM checkpoints WHERE run_id = ? AND file = ?", [run_id, name])
