"""Distil a student: soft-label runs from a teacher group, the jobs ``rsc distill`` makes from the same
choices (its teachers are chosen when the jobs are made, by the same function). In mode ced a line says
whether the teachers' views are stored or the first student makes them (so no ``rsc logits`` by hand)."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtWidgets import QGroupBox, QLabel, QVBoxLayout

from trainer.distill import VIEW_MODES
from trainer.jobs.specs import check_specs, default_student_group, student_jobs, view_status
from trainer.project import Project, ProjectError
from trainer.runs import Run

from .job_dialog import JobDialog
from .settings_form import SettingsForm
from .teachers_form import TeachersForm


class DistillDialog(JobDialog):
    def __init__(self, project: Project, all_runs: Sequence[Run], parent=None, arch: str = "cnn6", queue=None):
        super().__init__(project, "Distil a student", parent, queue)
        self.teachers = TeachersForm(all_runs)
        self.form = SettingsForm(arch=arch, seeds="1-5")
        self.views = QLabel()
        self.views.setObjectName("viewStatus")
        self.views.setWordWrap(True)
        self.views.setStyleSheet("QLabel#viewStatus { color: #37474f; }")
        soft = QGroupBox("Soft labels")
        soft_layout = QVBoxLayout(soft)
        soft_layout.addWidget(self.teachers)
        soft_layout.addWidget(self.views)
        student = QGroupBox("Student")
        QVBoxLayout(student).addWidget(self.form)
        self.body.addWidget(soft)
        self.body.addWidget(student)
        if not self.teachers.counts:
            self.show_error("No finished runs to learn from yet: train a teacher ensemble first.")
        self.teachers.changed.connect(self._teachers_changed)
        self.form.archChanged.connect(lambda _arch: self._name_group())
        self._teachers_changed()

    def _teachers_changed(self) -> None:
        self._name_group()
        self._show_views()

    def _name_group(self) -> None:
        distill = self.teachers.choices()
        self.form.group.setPlaceholderText(default_student_group(
            self.form.arch.currentText(), distill.label, self.teachers.effective_k(), distill.teachers))

    def _show_views(self) -> None:
        distill = self.teachers.choices()
        if distill.mode not in VIEW_MODES:
            self.views.hide()
            return
        try:
            text = view_status(self.project, distill)
        except ProjectError as exc:
            text = str(exc)
        self.views.setText(text)
        self.views.setVisible(bool(text))

    def student_jobs(self):
        """Teachers, selection, group and TrainSpecs, as ``rsc distill`` makes them."""
        jobs = student_jobs(self.project, self.form.choices(), self.teachers.choices())
        check_specs(jobs.specs)
        return jobs

    def specs(self) -> list:
        return self.student_jobs().specs

    def make_jobs(self) -> list:
        return self.specs()
