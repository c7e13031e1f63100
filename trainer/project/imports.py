"""The import log: every import (of a dataset, a folder, a label file) leaves a row, even when it is interrupted.

A running import's row names its process (pid and host). A row still 'running' whose process is gone
was killed before it finished: reading the log, or starting the next import, marks it 'interrupted'.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Iterable

from ..processes import host, owner_alive
from .errors import ProjectFileError
from .store import now


class ImportLog:
    """The project's room for the ``imports`` and ``import_messages`` tables."""

    def begin_import(self, kind: str, source: str | None) -> int:
        """A 'running' import row owned by this process."""
        row = {"kind": kind, "source": source, "started_at": now(), "status": "running", "pid": os.getpid(),
               "host": host()}
        with self.transaction():
            self.mark_interrupted_imports()
            return int(self.db["imports"].insert(row).last_pk)

    def finish_import(self, import_id: int, status: str, summary: dict, messages: Iterable[dict] = ()) -> None:
        """Close an import with its outcome, its counts and its messages (level, file, line, message)."""
        with self.transaction():
            self.db["import_messages"].insert_all([{"import_id": import_id, **message} for message in messages])
            self.db["imports"].update(
                import_id, {"finished_at": now(), "status": status, "summary": json.dumps(summary)}
            )

    def log_import(self, kind: str, source: str | None, summary: dict) -> int:
        """An import that ran inside one transaction, so it is logged as done in that same transaction."""
        with self.transaction():
            stamp = now()
            return int(
                self.db["imports"].insert(
                    {"kind": kind, "source": source, "started_at": stamp, "finished_at": stamp, "status": "ok",
                     "summary": json.dumps(summary), "pid": None, "host": None}
                ).last_pk
            )

    def imports(self) -> list[dict]:
        """The import log, newest first, with the summary parsed; killed imports read as 'interrupted'."""
        stale = _stale(self.query("SELECT id, status, pid, host FROM imports WHERE status = 'running'"))
        if stale:
            with contextlib.suppress(ProjectFileError):  # a read-only or busy file still reads its log honestly
                self._mark_interrupted(stale)
        rows = self.query("SELECT * FROM imports ORDER BY id DESC")
        for row in rows:
            row["status"] = "interrupted" if row["id"] in stale else row["status"]
            row["summary"] = json.loads(row["summary"]) if row["summary"] else {}
        return rows

    def import_messages(self, import_id: int) -> list[dict]:
        return self.query("SELECT level, file, line, message FROM import_messages WHERE import_id = ? ORDER BY id",
                          [import_id])

    def mark_interrupted_imports(self) -> list[int]:
        """Mark 'running' imports whose process is gone as 'interrupted'; returns their ids."""
        stale = _stale(self.query("SELECT id, status, pid, host FROM imports WHERE status = 'running'"))
        if stale:
            self._mark_interrupted(stale)
        return sorted(stale)

    def _mark_interrupted(self, ids: set[int]) -> None:
        with self.transaction():
            self.db.execute(
                f"UPDATE imports SET status = 'interrupted', finished_at = ? "
                f"WHERE status = 'running' AND id IN ({', '.join('?' * len(ids))})",
                [now(), *sorted(ids)],
            )


def _stale(rows: Iterable[dict]) -> set[int]:
    """Ids of the 'running' rows whose process is gone; a row from before schema 3 names none, so is gone."""
    return {row["id"] for row in rows if row["status"] == "running" and not owner_alive(row["pid"], row["host"])}
