"""The main window: project life cycle (new, open, recent, demo), imports, settings, status bar.

The window opens and closes the :class:`~trainer.project.Project` and hands it to the
:class:`~rscapp.model.ProjectModel`, which every view (the tabs of :mod:`rscapp.tabs`, the status bar) listens to.
Views never open or close projects. Long work (imports, the demo project, audio checks) runs in
:mod:`rscapp.workers` tasks on their own project connection; the model notices what they wrote.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QToolButton

from trainer.project import Project, ProjectError

from . import dialogs
from .background import create_demo, remove_project, run_import
from .model import ProjectModel
from .recent import RecentProjects
from .statusbar import StatusCounts, StatusRuns
from .style import app_icon
from .tabs import build_tab_actions, build_tabs
from .workers import Task, cancel_all, start

log = logging.getLogger(__name__)

ORGANISATION = APPLICATION = "RSC Studio"
DEMO_NAME = "demo.rsc"


def default_settings() -> QSettings:
    return QSettings(ORGANISATION, APPLICATION)


def default_data_dir() -> Path:
    """Per-user data folder (QStandardPaths.AppDataLocation), e.g. ~/.local/share/RSC Studio/RSC Studio."""
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(location or Path.home() / ".rsc-studio")


class MainWindow(QMainWindow):
    projectChanged = Signal(object)  # the Project, or None

    def __init__(self, settings: QSettings | None = None, data_dir: str | Path | None = None, parent=None):
        super().__init__(parent)
        self.settings = settings if settings is not None else default_settings()
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.recent = RecentProjects(self.settings)
        self.model = ProjectModel(self)
        self.tasks: list[Task] = []
        self.last_open_seconds: float | None = None
        self.auto_check_audio = True
        self.setWindowIcon(app_icon())
        self.resize(1280, 820)

        self.tabs = build_tabs(self)  # self.library, .listen, .train, .compare, .classify
        self.setCentralWidget(self.tabs)

        self.status_counts = StatusCounts(self.model)
        self.status_runs = StatusRuns(self.model)
        self.statusBar().addPermanentWidget(self.status_runs)
        self.statusBar().addPermanentWidget(self.status_counts)

        self._build_actions()
        self._build_menus()
        for action in (self.act_demo, self.act_open, self.act_new):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setMinimumWidth(260)
            button.setText(action.text().replace("&", ""))
            self.library.welcome_buttons.addWidget(button)
        self._connect()
        self.restore_settings()
        self._set_project(None)

    # -- actions and menus ---------------------------------------------------------------------
    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(lambda checked=False: slot())
        return action

    def _build_actions(self) -> None:
        self.act_new = self._action("&New project...", self.new_project, QKeySequence.StandardKey.New,
                                    "Create an empty project file")
        self.act_open = self._action("&Open project...", self.ask_open_project, QKeySequence.StandardKey.Open)
        self.act_demo = self._action("Open &demo project", self.open_demo,
                                     tip="24 synthetic recordings with known crackles and wheezes")
        self.act_close = self._action("&Close project", self.close_project, QKeySequence.StandardKey.Close)
        self.act_import_icbhi = self._action("Import &ICBHI folder...", lambda: self.ask_import("icbhi"),
                                             tip="A folder in the ICBHI 2017 layout (.wav + .txt annotations)")
        self.act_import_folder = self._action("Import &recordings folder...", lambda: self.ask_import("folder"),
                                              tip="Any folder of .wav/.flac files, optionally with a labels CSV")
        self.act_check_audio = self._action("Check audio &files", lambda: self.library.check_audio(),
                                            tip="Find moved or changed audio files")
        self.act_quit = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.tab_actions = build_tab_actions(self)  # self.act_library, ... (Ctrl+1, Ctrl+2, ...)
        self.act_clear_filters = self._action("&Clear library filters", self.library.clear_filters)
        self.act_about = self._action("&About RSC Studio", self.show_about)
        stack = self.listen.undo_stack()
        self.act_undo = stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence.StandardKey.Undo)
        self.act_redo = stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts([QKeySequence(QKeySequence.StandardKey.Redo), QKeySequence("Ctrl+Y")])

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        file.addAction(self.act_new)
        file.addAction(self.act_open)
        self.recent_menu = QMenu("Open &recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file.addMenu(self.recent_menu)
        file.addAction(self.act_demo)
        file.addSeparator()
        file.addAction(self.act_import_icbhi)
        file.addAction(self.act_import_folder)
        file.addSeparator()
        file.addAction(self.act_close)
        file.addAction(self.act_quit)
        edit = bar.addMenu("&Edit")
        edit.addAction(self.act_undo)
        edit.addAction(self.act_redo)
        view = bar.addMenu("&View")
        for action in self.tab_actions:
            view.addAction(action)
        view.addSeparator()
        view.addAction(self.act_clear_filters)
        tools = bar.addMenu("&Tools")
        tools.addAction(self.act_check_audio)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_about)

    def _connect(self) -> None:
        self.library.openRequested.connect(self.open_in_listen)
        self.library.statusMessage.connect(self.show_message)
        self.listen.statusMessage.connect(self.show_message)
        self.train.statusMessage.connect(self.show_message)
        self.compare.statusMessage.connect(self.show_message)
        self.compare.openCycle.connect(self.open_in_listen)
        self.classify.statusMessage.connect(self.show_message)
        self.classify.openRecording.connect(self.open_in_listen)

    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    # -- project life cycle ---------------------------------------------------------------------
    @property
    def project(self) -> Project | None:
        return self.model.project

    def _set_project(self, project: Project | None) -> None:
        for action in (self.act_close, self.act_import_icbhi, self.act_import_folder, self.act_check_audio):
            action.setEnabled(project is not None)
        self.model.set_project(project)
        self.setWindowTitle(f"{project.path.name} - RSC Studio" if project else "RSC Studio")
        self.projectChanged.emit(project)

    def open_project(self, path: str | Path) -> bool:
        """Open a project file; any failure is one clear dialog naming the file, never a traceback."""
        path = Path(path).expanduser()
        started = time.perf_counter()
        try:
            project = Project.open(path)
        except ProjectError as exc:
            self._open_failed(path, str(exc))
            return False
        except (sqlite3.DatabaseError, OSError, UnicodeDecodeError, ValueError) as exc:
            self._open_failed(path, f"{path}: not a readable RSC Studio project ({exc})",
                              "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
            return False
        self._close_current()
        self._set_project(project)
        self.last_open_seconds = time.perf_counter() - started
        self.add_recent(project.path)
        self.settings.setValue("last_project", str(project.path))  # now: a killed app still reopens it
        if self.auto_check_audio:
            self.library.check_audio(quiet=True)  # moved or changed files show up without asking
        self.show_message(f"Opened {project.path} in {self.last_open_seconds * 1000:.0f} ms")
        return True

    def _open_failed(self, path: Path, message: str, details: str | None = None) -> None:
        self.remove_recent(path)
        dialogs.show_error(self, f"Could not open the project {path.name}.\n{message}", details)

    def _close_current(self) -> None:
        if self.project is None:
            return
        old = self.project
        self._set_project(None)
        old.close()

    def close_project(self) -> None:
        """File > Close project: the next start shows the welcome page, not this project."""
        self._close_current()
        self.settings.setValue("last_project", "")

    def ask_open_project(self) -> None:
        start_dir = str(Path(self.recent_projects()[0]).parent) if self.recent_projects() else str(Path.home())
        path = dialogs.ask_open_project(self, start_dir)
        if path:
            self.open_project(path)

    def new_project(self, path: str | Path | None = None) -> bool:
        if path is None:
            path = dialogs.ask_new_project(self, str(Path.home()))
            if not path:
                return False
        path = Path(path)
        if path.exists():
            dialogs.show_error(self, f"{path.name} already exists.\nOpen it with File > Open project, or choose a new name.")
            return False
        try:
            Project.create(path).close()
        except (ProjectError, OSError, sqlite3.DatabaseError) as exc:
            dialogs.show_error(self, f"Could not create the project {path}.\n{exc}")
            return False
        return self.open_project(path)

    # -- demo project ------------------------------------------------------------------------------
    def demo_path(self) -> Path:
        return self.data_dir / "demo" / DEMO_NAME

    def open_demo(self) -> Task | None:
        """Open the demo project, creating it first (in the background) if this user has none."""
        path = self.demo_path()
        if path.exists():
            self.open_project(path)
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        task = Task(create_demo, str(path), name="create demo project")
        task.signals.finished.connect(lambda _: self.open_project(path))
        task.signals.cancelled.connect(lambda: remove_project(path))
        task.signals.failed.connect(lambda exc, tb: (remove_project(path), dialogs.show_exception(
            self, exc, "Could not create the demo project.", tb)))
        self.progress_dialog = dialogs.TaskProgressDialog(
            self, "Creating the demo project", task, "Writing 24 synthetic recordings and importing them...")
        self._start(task)
        return task

    def _start(self, task: Task) -> None:
        """Start a task and keep it in ``tasks`` while it runs (closeEvent cancels what is left)."""
        self.tasks.append(task)
        task.signals.done.connect(lambda: self.tasks.remove(task) if task in self.tasks else None)
        start(task)

    # -- imports -----------------------------------------------------------------------------------
    def ask_import(self, kind: str) -> Task | None:
        if self.project is None:
            return None
        title = "Import ICBHI folder" if kind == "icbhi" else "Import recordings folder"
        directory = dialogs.ask_directory(self, title, str(self.project.root))
        if not directory:
            return None
        labels = None
        if kind == "folder":
            labels = dialogs.ask_labels_csv(self, directory)
        return self.import_dataset(kind, directory, labels)

    def import_dataset(self, kind: str, directory: str | Path, labels_csv: str | Path | None = None,
                       show_progress: bool = True) -> Task | None:
        """Import in a background task (own connection; one recording per transaction); Cancel keeps
        the recordings already imported. Returns the task (tests wait on ``task.signals.done``)."""
        if self.project is None:
            return None
        task = Task(run_import, kind, str(self.project.path), str(directory),
                    str(labels_csv) if labels_csv else None, name=f"import {kind}")
        task.signals.finished.connect(lambda report: self._import_finished(directory, report))
        task.signals.cancelled.connect(lambda: self._import_stopped(directory, cancelled=True))
        task.signals.failed.connect(lambda exc, tb: self._import_failed(directory, exc, tb))
        if show_progress:
            self.progress_dialog = dialogs.TaskProgressDialog(self, "Importing", task, f"Importing {directory}")
        self._start(task)
        self.show_message(f"Importing {directory}...")
        return task

    def _refresh_after_import(self) -> None:
        # At once rather than at the model's next poll: the message below should not come first.
        self.model.refresh()

    def _import_finished(self, directory, report) -> None:
        self._refresh_after_import()
        summary = ", ".join(f"{k}: {v}" for k, v in (report.summary or {}).items()) or "nothing imported"
        self.show_message(f"Imported {directory} ({summary})")
        if report.messages:
            dialogs.show_report(
                self, "Import report",
                f"Imported {directory}: {summary}.<br>{len(report.errors)} error(s) and "
                f"{len(report.warnings)} warning(s); "
                "each names the file and line it is about.",
                [tuple(m) for m in report.messages],
            )

    def _import_stopped(self, directory, cancelled: bool) -> None:
        self._refresh_after_import()
        self.show_message(f"Import of {directory} cancelled; the recordings imported before it are kept")

    def _import_failed(self, directory, exc, tb) -> None:
        self._refresh_after_import()
        if isinstance(exc, ProjectError):  # a refusal the core explains (file and line): no traceback
            dialogs.show_error(self, f"Import of {directory} refused.\n{exc}")
            return
        dialogs.show_exception(self, exc, f"Import of {directory} stopped.", tb)

    # -- listening ----------------------------------------------------------------------------------
    def open_in_listen(self, recording_id: int, cycle_id: int = -1) -> None:
        self.tabs.setCurrentWidget(self.listen)
        try:
            self.listen.open_recording(int(recording_id), None if cycle_id is None or cycle_id < 0 else int(cycle_id))
        except Exception as exc:  # noqa: BLE001 - e.g. audio missing: a dialog, and the app goes on
            dialogs.show_exception(self, exc, "Could not open the recording.")

    # -- settings -----------------------------------------------------------------------------------
    def recent_projects(self) -> list[str]:
        return self.recent.paths()

    def add_recent(self, path: str | Path) -> None:
        self.recent.add(path)

    def remove_recent(self, path: str | Path) -> None:
        self.recent.remove(path)

    def prune_recent(self) -> list[str]:
        return self.recent.prune()

    def _fill_recent_menu(self) -> None:
        self.recent.fill_menu(self.recent_menu, self.open_project)

    def restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, (QByteArray, bytes)):
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if isinstance(state, (QByteArray, bytes)):
            self.restoreState(state)
        try:
            tab = int(self.settings.value("window/tab", 0))
        except (TypeError, ValueError):
            tab = 0
        self.tabs.setCurrentIndex(tab if 0 <= tab < self.tabs.count() else 0)
        filters = self.settings.value("library/filters")
        if filters:
            self.library.set_filter_state(filters)

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/tab", self.tabs.currentIndex())
        self.settings.setValue("library/filters", json.dumps(self.library.filter_state()))
        self.settings.setValue("last_project", str(self.project.path) if self.project else "")
        self.settings.sync()

    def last_project(self) -> str | None:
        value = self.settings.value("last_project", "")
        return str(value) if value and Path(str(value)).exists() else None

    # -- misc ----------------------------------------------------------------------------------------
    def show_about(self) -> None:
        dialogs.AboutDialog(self).exec()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.train.confirm_close(self):  # a job running: stop it, leave it running, or stay
            event.ignore()
            return
        self.save_settings()
        cancel_all(wait=10.0)
        self._close_current()
        super().closeEvent(event)
