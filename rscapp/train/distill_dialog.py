"""Distil a student: soft-label runs from a teacher group, the jobs ``rsc distill`` makes from the same
choices (its teachers are chosen when the jobs are made, by the same function)."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtWidgets import QGroupBox, QVBoxLayout

from trainer.jobs.specs import check_specs, default_student_group, student_jobs
from trainer.project import Project
from trainer.runs import Run

from .job_dialog import JobDialog
from .settings_form import SettingsForm
from .teachers_form import TeachersForm


class DistillDialog(JobDialog):
    def __init__(self, project: Project, all_runs: Sequence[Run], parent=None, arch: str = "cnn6", queue=None):
        super().__init__(project, "Distil a student", parent, queue)
        self.teachers = TeachersForm(all_runs)
        self.form = SettingsForm(arch=arch, seeds="1-5")
        for title, widget in (("Soft labels", self.teachers), ("Student", self.form)):
            box = QGroupBox(title)
            QVBoxLayout(box).addWidget(widget)
            self.body.addWidget(box)
        if not self.teachers.counts:
            self.show_error("No finished runs to learn from yet: train a teacher ensemble first.")
        self.teachers.changed.connect(self._name_group)
        self.form.archChanged.connect(lambda _arch: self._name_group())
        self._name_group()

    def _name_group(self) -> None:
        distill = self.teachers.choices()
        self.form.group.setPlaceholderText(default_student_group(
            self.form.arch.currentText(), distill.label, self.teachers.effective_k(), distill.teachers))

    def student_jobs(self):
        """Teachers, selection, group and TrainSpecs, as ``rsc distill`` makes them."""
        jobs = student_jobs(self.project, self.form.choices(), self.teachers.choices())
        check_specs(jobs.specs)
        return jobs

    def specs(self) -> list:
        return self.student_jobs().specs

    def make_jobs(self) -> list:
        return self.specs()
