"""What an import did and what it refused, with file and line for every problem; stored in the project.

Three grades of trouble. A bad line, a cycle that breaks the cycle rule, or audio that cannot be read
is reported and the rest goes in. A file refused as a whole (a label file nothing can be read from, a
file name that is not UTF-8) leaves what it concerns out of the project; the import goes on with the
rest and reports ``refused``, and the command line exits with status 2. A file the whole import rests
on that cannot be read (the labels CSV, the split file) refuses the import before anything is written:
:class:`ImportRefused`, one line naming the file.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..interrupts import CANCELS
from ..labelfiles.interval import printable
from ..project import Project, ProjectError

ProgressFn = Callable[[int, int], None]


class ImportRefused(ProjectError):
    """An import refused as a whole, before it wrote anything but its row in the import log."""

    @classmethod
    def unless_storable(cls, folder: Path) -> None:
        """Refuse a folder whose path is not UTF-8: the project stores every path in it as UTF-8."""
        try:
            str(folder).encode("utf-8")
        except UnicodeEncodeError:
            raise cls(folder, None, "the folder's path is not valid UTF-8 (the project stores paths as UTF-8); "
                                    "rename it and import again") from None

    def __init__(self, file: str | Path, line: int | None, message: str):
        self.file, self.line, self.message = printable(str(file)), line, printable(message)
        where = f"{self.file}:{line}" if line else self.file
        super().__init__(f"{where}: {message}")


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

    def __post_init__(self) -> None:
        self.source = printable(self.source)

    def add(self, level: str, file: str | Path, line: int | None, message: str) -> None:
        self.messages.append(Message(level, printable(str(file)), line, printable(message)))

    def error(self, file, line, message) -> None:
        self.add("error", file, line, message)

    def warning(self, file, line, message) -> None:
        self.add("warning", file, line, message)

    def refuse(self, file, line, message) -> None:
        """A file refused as a whole: an error, and one more ``refused`` in the summary."""
        self.error(file, line, message)
        self.count("refused")

    def count(self, key: str, n: int = 1) -> None:
        self.summary[key] = self.summary.get(key, 0) + n

    @property
    def refused(self) -> int:
        return self.summary.get("refused", 0)

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
        """Record the import in the project: 'running' while inside, then 'done'; 'failed' when refused
        (:class:`ImportRefused`) or stopped by an error, 'cancelled' when its user stopped it."""
        self.begin(project)
        try:
            yield self
        except ImportRefused as refusal:
            self.error(refusal.file, refusal.line, refusal.message)
            self._finish_after_error(project, "failed")
            raise
        except CANCELS:
            self._finish_after_error(project, "cancelled")
            raise
        except BaseException:
            self._finish_after_error(project, "failed")
            raise
        self.finish(project, "done")

    def _finish_after_error(self, project: Project, status: str) -> None:
        # A file that refuses writes (full disk, read-only) refuses this one too: the error that
        # stopped the import is the one to raise, and the row stays 'running' until marked interrupted.
        with contextlib.suppress(ProjectError):
            self.finish(project, status)
