"""What every job dialog does on OK: make the jobs from the choices (``trainer.jobs.specs``, as the CLI
does), confirm a large request, hand the jobs to whoever queues them, and say in the dialog what is
wrong, so that a refused job (a weights file that does not fit, teachers without outputs) leaves the
dialog open with the reason and nothing queued."""

from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from trainer.project import Project, ProjectError

from .. import dialogs

LARGE_REQUEST = 20  # more runs than this in one go are confirmed first


class JobDialog(QDialog):
    """A dialog whose OK makes jobs; subclasses fill ``body`` and implement :meth:`make_jobs`.

    ``queue(jobs)`` (the Train view's) stores them and raises ProjectError if the core refuses the
    first; without it the dialog only makes them. After ``accepted`` they are in :attr:`jobs`.
    """

    ok_text = "Queue"

    def __init__(self, project: Project, title: str, parent: QWidget | None = None,
                 queue: Callable[[object], object] | None = None):
        super().__init__(parent)
        self.project = project
        self.queue = queue
        self.jobs = None
        self.setWindowTitle(title)
        self.setMinimumWidth(560)
        self.body = QVBoxLayout()
        self.error = QLabel()
        self.error.setObjectName("dialogError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c62828")
        self.error.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(self.ok_text)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(self.body)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def make_jobs(self):
        """The jobs the choices ask for (raise ProjectError, e.g. SpecError, with a one-line reason)."""
        raise NotImplementedError

    @staticmethod
    def count(jobs) -> int:
        return len(jobs)

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))

    def accept(self) -> None:
        try:
            jobs = self.make_jobs()
        except ProjectError as exc:
            self.show_error(str(exc))
            return
        n = self.count(jobs)
        if n == 0:
            self.show_error("Nothing to queue: every run asked for already exists.")
            return
        if n > LARGE_REQUEST and not dialogs.ask_yes_no(
                self, f"This queues {n} training runs, which may take a long time. Queue them all?"):
            return
        if self.queue is not None:
            try:
                self.queue(jobs)
            except ProjectError as exc:
                self.show_error(str(exc))
                return
        self.show_error("")
        self.jobs = jobs
        super().accept()
