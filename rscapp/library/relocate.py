"""The Library's audio files: "Locate audio file..." for one recording, and "Check audio files" for all
(``trainer.project.queries.check_audio`` on a pool thread with its own connection; the model then
announces the recordings whose status changed)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from trainer.audio import AudioError
from trainer.project import Project, ProjectError
from trainer.project.queries import check_audio

from .. import dialogs
from ..model import ProjectModel
from ..workers import Task, start

PROGRESS_DIALOG_FROM = 50  # recordings; a shorter check is over before a dialog would show


def check_all_audio(project_path: str, rehash: bool = False, progress=None) -> dict[str, int]:
    """Recordings per audio status after checking each one (on a worker thread, with its own connection)."""
    with Project.open(project_path) as project:
        return check_audio(project, rehash=rehash, progress=progress).counts


class AudioFiles(QObject):
    statusMessage = Signal(str)

    def __init__(self, model: ProjectModel, window: QWidget):
        super().__init__(window)
        self.model = model
        self.window = window  # parent of the dialogs
        self.task: Task | None = None

    def cancel(self) -> None:
        if self.task is not None and not self.task.is_done:
            self.task.cancel()
        self.task = None

    def locate(self, recording_id: int, path: str | None = None) -> bool:
        """Ask for the new place of a recording's audio and point the project at it.

        A file with other content is refused (``Project.relocate_audio``) with a message saying so.
        """
        project = self.model.project
        if project is None:
            return False
        rec = project.recording(recording_id)
        if path is None:
            old = project.audio_path(rec)
            start_dir = str(old.parent) if old is not None and old.parent.exists() else str(project.root)
            path = dialogs.ask_audio_file(self.window, rec["name"], start_dir)
            if not path:
                return False
        try:
            self.model.relocate_audio(recording_id, path)
        except ProjectError as exc:
            dialogs.show_error(self.window, f"Could not use this file for {rec['name']}.\n{exc}")
            return False
        except (AudioError, OSError) as exc:  # not audio, or unreadable: say which file
            dialogs.show_error(self.window, f"Could not use {path} for {rec['name']}.\n{exc}")
            return False
        self.statusMessage.emit(f"{rec['name']}: audio found at {path}")
        return True

    def check(self, rehash: bool = False, quiet: bool = False) -> Task | None:
        """Check every recording's audio file in the background; the model announces what changed.

        ``quiet`` (used right after a project opens): no progress dialog and no message when all is well.
        """
        project = self.model.project
        if project is None or (self.task is not None and not self.task.is_done):
            return None
        path = project.path
        task = Task(check_all_audio, str(path), rehash=rehash, name="check audio files")
        task.signals.finished.connect(lambda result: self._checked(path, result, quiet))
        task.signals.failed.connect(
            lambda exc, tb: None if quiet else dialogs.show_exception(self.window, exc, "Checking audio files failed.", tb)
        )
        self.task = task
        if not quiet:
            if self.model.counts()["recordings"] > PROGRESS_DIALOG_FROM:
                dialogs.TaskProgressDialog(self.window, "Checking audio files", task)
            self.statusMessage.emit("Checking audio files...")
        start(task)
        return task

    def _checked(self, path: Path, result: dict, quiet: bool) -> None:
        if self.model.project is None or self.model.project.path != path:
            return  # another project was opened meanwhile
        changes = self.model.refresh()
        if quiet and not changes.recording_ids:
            return
        problems = {k: v for k, v in result.items() if k != "ok" and v}
        if problems:
            text = ", ".join(f"{n} {status}" for status, n in sorted(problems.items()))
            self.statusMessage.emit(f"Audio files checked: {result.get('ok', 0)} ok, {text}")
        else:
            self.statusMessage.emit(f"Audio files checked: all {result.get('ok', 0)} ok")
