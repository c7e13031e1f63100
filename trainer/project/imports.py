"""The import log: every import (of a dataset, a folder, a label file) leaves a row, even when it is interrupted."""

from __future__ import annotations

import json
from typing import Iterable

from .store import now


class ImportLog:
    """The project's room for the ``imports`` and ``import_messages`` tables."""

    def begin_import(self, kind: str, source: str | None) -> int:
        """A 'running' import row; one that stays 'running' was killed before it finished."""
        row = {"kind": kind, "source": source, "started_at": now(), "status": "running"}
        with self.transaction():
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
                     "summary": json.dumps(summary)}
                ).last_pk
            )
