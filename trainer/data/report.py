"""What an import did and what it refused, with file and line for every problem; stored in the project."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..project import Project

ProgressFn = Callable[[int, int], None]


@dataclass
class Message:
    level: str  # "error": input refused or skipped; "warning": imported, but look at it; "info"
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.level}: {self.message}"

    # Unpacks as (level, file, line, message) for callers that want a plain tuple.
    def __iter__(self):
        return iter((self.level, self.file, self.line, self.message))


@dataclass
class ImportReport:
    kind: str
    source: str
    messages: list[Message] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    import_id: int | None = None
    status: str = "running"

    def add(self, level: str, file: str | Path, line: int | None, message: str) -> None:
        self.messages.append(Message(level, str(file), line, message))

    def error(self, file, line, message) -> None:
        self.add("error", file, line, message)

    def warning(self, file, line, message) -> None:
        self.add("warning", file, line, message)

    def count(self, key: str, n: int = 1) -> None:
        self.summary[key] = self.summary.get(key, 0) + n

    @property
    def errors(self) -> list[Message]:
        return [m for m in self.messages if m.level == "error"]

    @property
    def warnings(self) -> list[Message]:
        return [m for m in self.messages if m.level == "warning"]

    # -- persistence: an import leaves a trace in the project even when it is interrupted --------
    def begin(self, project: Project) -> None:
        self.import_id = project.begin_import(self.kind, self.source)

    def finish(self, project: Project, status: str) -> None:
        self.status = status
        messages = [{"level": m.level, "file": m.file, "line": m.line, "message": m.message} for m in self.messages]
        project.finish_import(self.import_id, status, self.summary, messages)

    @contextlib.contextmanager
    def recording(self, project: Project):
        """Record the import in the project: 'running' while inside, then 'done', or 'cancelled' on any exception."""
        self.begin(project)
        try:
            yield self
        except BaseException:
            self.finish(project, "cancelled")
            raise
        self.finish(project, "done")
