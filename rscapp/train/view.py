"""Train: new teacher ensembles, students, collaborative models and teacher-count sweeps as jobs, the
queue with live progress, and the epoch lines of the selected run.

Jobs run in a worker process (:mod:`.worker`), never in the app; the view reads runs only through the
:class:`~rscapp.model.ProjectModel` (``runs()``, ``runsChanged``), so an epoch the worker finishes shows
at the model's next poll. The main window asks :meth:`TrainView.confirm_close` before it closes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QMenu, QMessageBox, QPushButton, QSplitter, QTableView,
    QVBoxLayout, QWidget,
)

from trainer import runs

from .. import dialogs
from ..model import ProjectModel
from .actions import QueueActions, can_cancel, can_remove, can_resume
from .collab_dialog import CollabDialog
from .distill_dialog import DistillDialog
from .epoch_lines import EpochLines
from .failures import failure_line
from .queue_table import COLUMNS, PROGRESS_COLUMN, WIDTHS, ProgressDelegate, QueueModel
from .sweep_dialog import SweepDialog
from .teacher_dialog import TeacherDialog
from .worker import WorkerSupervisor

STOP, LEAVE, STAY = "stop", "leave", "stay"


def ask_close_choice(parent: QWidget | None, text: str) -> str:
    """Stop the running jobs, leave them running, or do not close (tests replace this)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Training is running")
    box.setText(text)
    box.setInformativeText("A job left running goes on in its own process and shows here when you open the "
                           "project again. A stopped job keeps its last epoch: resume continues from there.")
    stop = box.addButton("Stop it", QMessageBox.ButtonRole.DestructiveRole)
    leave = box.addButton("Leave it running", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(leave)
    box.exec()
    return {id(stop): STOP, id(leave): LEAVE}.get(id(box.clickedButton()), STAY)


class TrainView(QWidget):
    statusMessage = Signal(str)

    def __init__(self, model: ProjectModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.worker = WorkerSupervisor(model, self)
        self.actions = QueueActions(model, self.worker, self)
        self.queue = QueueModel(self)
        self.table = self._make_table()
        self.lines = EpochLines()
        self.new_teachers = QPushButton("New teacher ensemble...")
        self.new_student = QPushButton("Distil a student...")
        self.new_collab = QPushButton("Collaborative models...")
        self.new_collab.setToolTip("One model per input representation, trained together, each learning from its peers")
        self.new_sweep = QPushButton("Teacher-count sweep...")
        self.worker_label = QLabel()
        self.worker_label.setObjectName("workerState")
        self.start_worker = QPushButton("Start worker")
        self.notice = QLabel()  # the latest failure, in one line, until dismissed or the run is resumed
        self.notice.setObjectName("failureNotice")
        self.notice.setStyleSheet("QLabel#failureNotice { color: #b71c1c; background: #ffebee; padding: 4px; }")
        self.notice.setWordWrap(True)
        self.notice.hide()
        self.buttons = {name: QPushButton(name) for name in ("Cancel", "Resume", "Remove", "Run again")}
        self.dialog = None  # the job dialog open now, if any
        self._failed_seen: set[str] = set()
        self._build()
        self._connect()
        self._project_changed(model.project)

    # -- layout ------------------------------------------------------------------------------
    def _make_table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.queue)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        table.verticalHeader().setDefaultSectionSize(24)
        table.horizontalHeader().setStretchLastSection(True)
        table.setItemDelegateForColumn(PROGRESS_COLUMN, ProgressDelegate(table))
        for column, width in enumerate(WIDTHS):
            table.setColumnWidth(column, width)
        return table

    def _build(self) -> None:
        top = QHBoxLayout()
        for button in (self.new_teachers, self.new_student, self.new_collab, self.new_sweep):
            top.addWidget(button)
        top.addStretch(1)
        top.addWidget(self.worker_label)
        top.addWidget(self.start_worker)
        row = QHBoxLayout()
        for button in self.buttons.values():
            row.addWidget(button)
        row.addStretch(1)
        below = QWidget()
        below_layout = QVBoxLayout(below)
        below_layout.setContentsMargins(0, 0, 0, 0)
        below_layout.addLayout(row)
        below_layout.addWidget(self.lines)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(below)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.notice)
        layout.addWidget(self.splitter, 1)

    def _connect(self) -> None:
        self.model.projectChanged.connect(self._project_changed)
        self.model.runsChanged.connect(self._runs_changed)
        self.worker.changed.connect(self._refresh_all)
        self.actions.message.connect(self.statusMessage)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.new_teachers.clicked.connect(self.new_teacher_ensemble)
        self.new_student.clicked.connect(self.distil_student)
        self.new_collab.clicked.connect(self.collaborative_models)
        self.new_sweep.clicked.connect(self.teacher_count_sweep)
        self.start_worker.clicked.connect(self._start_worker_clicked)
        handlers = {"Cancel": self.actions.cancel, "Resume": self.actions.resume, "Remove": self.remove,
                    "Run again": self.actions.run_again}
        for name, handler in handlers.items():
            self.buttons[name].clicked.connect(lambda checked=False, handler=handler: handler(self.selected_ids()))

    # -- following the model ----------------------------------------------------------------------
    def _project_changed(self, project) -> None:
        for button in (self.new_teachers, self.new_student, self.new_collab, self.new_sweep):
            button.setEnabled(project is not None)
        self._failed_seen = {r.id for r in self.model.runs() if r.status == runs.FAILED}
        self.notice.hide()
        self.queue.set_runs(self.model.runs())
        self._selection_changed()
        self._update_worker_state()
        self.worker.watch()

    def _runs_changed(self, run_ids) -> None:
        selected = self.selected_ids()
        self.queue.set_runs(self.model.runs(), run_ids)
        self._reselect(selected)
        self._announce_failures()
        self._selection_changed(force=self.lines.run_id in set(run_ids))
        self._update_worker_state()

    def _refresh_all(self) -> None:
        selected = self.selected_ids()
        self.queue.set_runs(self.model.runs(), [r.id for r in self.model.runs()])
        self._reselect(selected)
        self._selection_changed(force=True)
        self._update_worker_state()

    def _announce_failures(self) -> None:
        for row in self.queue.rows:
            run = row.run
            if run.status == runs.FAILED and run.id not in self._failed_seen:
                self._failed_seen.add(run.id)
                text = f"Run {run.id} failed: {failure_line(run.error)}"
                self.notice.setText(text)
                self.notice.show()
                self.statusMessage.emit(text)
            elif run.status != runs.FAILED:
                self._failed_seen.discard(run.id)
        if self.notice.isVisible() and not any(r.status == runs.FAILED for r in self.model.runs()):
            self.notice.hide()

    def _update_worker_state(self) -> None:
        pids = self.worker.pids() if self.model.project is not None else []
        queued = self.worker.queued()
        if pids:
            text = f"worker running (pid {', '.join(map(str, pids))})"
        elif queued:
            text = f"{queued} job{'s' if queued != 1 else ''} waiting, no worker"
        else:
            text = "worker idle"
        self.worker_label.setText(text)
        self.start_worker.setVisible(bool(queued) and not pids)

    def _start_worker_clicked(self) -> None:
        self.worker.ensure()
        self._update_worker_state()

    # -- selection ----------------------------------------------------------------------------------
    def selected_ids(self) -> list[str]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.queue.rows[r].run.id for r in rows if r < len(self.queue.rows)]

    def select_run(self, run_id: str) -> None:
        self._reselect([run_id])
        self._selection_changed()

    def _reselect(self, run_ids) -> None:
        selection = self.table.selectionModel()
        current = self.selected_ids()
        if current == list(run_ids):
            return
        selection.clearSelection()
        flags = selection.SelectionFlag.Select | selection.SelectionFlag.Rows
        for run_id in run_ids:
            row = self.queue.row_of(run_id)
            if row is not None:
                selection.select(self.queue.index(row, 0), flags)

    def _selection_changed(self, force: bool = True) -> None:
        chosen = [self.queue.row_for(run_id).run for run_id in self.selected_ids()]
        self.buttons["Cancel"].setEnabled(any(can_cancel(r) for r in chosen))
        self.buttons["Resume"].setEnabled(any(can_resume(r) for r in chosen))
        self.buttons["Remove"].setEnabled(bool(chosen) and all(can_remove(r) for r in chosen))
        self.buttons["Run again"].setEnabled(bool(chosen))
        shown = chosen[-1] if chosen else None
        if force or (shown.id if shown else None) != self.lines.run_id:
            self.lines.show_run(self.model.project, shown)

    def _context_menu(self, pos) -> None:
        menu = QMenu(self)
        for name, button in self.buttons.items():
            action = menu.addAction(name)
            action.setEnabled(button.isEnabled())
            action.triggered.connect(button.click)
        menu.exec(self.table.viewport().mapToGlobal(pos))

    # -- actions ------------------------------------------------------------------------------------
    def remove(self, run_ids) -> list[str]:
        if not run_ids or not dialogs.ask_yes_no(
                self, f"Remove {len(run_ids)} run{'s' if len(run_ids) != 1 else ''}? "
                      "Their epochs, outputs and checkpoints are deleted."):
            return []
        return self.actions.remove(run_ids)

    def _open_dialog(self, dialog):
        """Open a job dialog without blocking (tests fill it in and press OK); it queues through the view."""
        self.dialog = dialog
        dialog.finished.connect(lambda _result: setattr(self, "dialog", None))
        dialog.open()
        return dialog

    def new_teacher_ensemble(self) -> TeacherDialog | None:
        if self.model.project is None:
            return None
        return self._open_dialog(TeacherDialog(self.model.project, self, queue=self.actions.queue_specs))

    def distil_student(self) -> DistillDialog | None:
        if self.model.project is None:
            return None
        return self._open_dialog(DistillDialog(self.model.project, self.model.runs(), self,
                                               queue=self.actions.queue_specs))

    def collaborative_models(self) -> CollabDialog | None:
        if self.model.project is None:
            return None
        return self._open_dialog(CollabDialog(self.model.project, self, queue=self.actions.queue_collab))

    def teacher_count_sweep(self) -> SweepDialog | None:
        if self.model.project is None:
            return None
        return self._open_dialog(SweepDialog(self.model.project, self.model.runs(), self,
                                             queue=self.actions.queue_sweep))

    # -- closing ------------------------------------------------------------------------------------
    def running_ids(self) -> list[str]:
        """Runs a live process is training now."""
        return [r.id for r in self.model.runs() if r.active and r.owner_alive()]

    def confirm_close(self, parent: QWidget | None = None) -> bool:
        """Before the app closes: with a job running, ask whether to stop it or leave it running.
        False: the user chose not to close."""
        active = self.running_ids()
        if not active and not self.worker.pids():
            return True
        what = f"{len(active)} training job{'s are' if len(active) != 1 else ' is'} running." if active else \
            "The worker is still working through the queue."
        choice = ask_close_choice(parent or self, what)
        if choice == STAY:
            return False
        if choice == STOP:
            self.worker.stop()
        self.worker.release()
        return True
