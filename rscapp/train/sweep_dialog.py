"""Teacher-count sweep (paper Figures 2 and 3): students from k = 0, 1, 3, ... teachers, the runs
``rsc sweep`` plans from the same choices. Runs of the sweep that already exist are reused."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtWidgets import QGroupBox, QLineEdit, QVBoxLayout

from trainer import runs
from trainer.jobs.specs import sweep_plan
from trainer.project import Project
from trainer.results import DEFAULT_KS, SweepError, default_prefix, parse_ks
from trainer.runs import Run

from .job_dialog import JobDialog
from .settings_form import SettingsForm
from .teachers_form import TeachersForm


class SweepDialog(JobDialog):
    def __init__(self, project: Project, all_runs: Sequence[Run], parent=None, arch: str = "cnn6", queue=None):
        super().__init__(project, "Teacher-count sweep", parent, queue)
        self.teachers = TeachersForm(all_runs, with_k=False)
        self.ks = QLineEdit(",".join(map(str, DEFAULT_KS)))
        self.ks.setToolTip("Numbers of teachers; k = 0 trains the student on hard labels (the left end of the curve)")
        self.form = SettingsForm(arch=arch, seeds="1-5")
        self.form.form.insertRow(0, "Teacher counts (k)", self.ks)
        self.form.form.labelForField(self.form.group).setText("Group prefix")
        for title, widget in (("Soft labels", self.teachers), ("Students", self.form)):
            box = QGroupBox(title)
            QVBoxLayout(box).addWidget(widget)
            self.body.addWidget(box)
        if not self.teachers.counts:
            self.show_error("No finished runs to learn from yet: train a teacher ensemble first.")
        self.teachers.changed.connect(self._name_prefix)
        self.ks.textChanged.connect(self._count_runs)
        self._count_runs()
        self.form.archChanged.connect(lambda _arch: self._name_prefix())
        self._name_prefix()

    def _name_prefix(self) -> None:
        distill = self.teachers.choices()
        self.form.group.setPlaceholderText(default_prefix(distill.teachers, self.form.arch.currentText(), distill.mode))

    def _count_runs(self) -> None:
        try:
            self.form.runs_per_seed = len(parse_ks(self.ks.text()))
        except SweepError:
            self.form.runs_per_seed = 0
        self.form.count_seeds()

    def plan(self):
        """The sweep's planned runs, as ``rsc sweep`` plans them."""
        return sweep_plan(self.project, self.form.choices(), self.teachers.choices(), self.ks.text())

    def specs(self) -> list:
        return self.plan().specs

    def make_jobs(self):
        return self.plan()

    @staticmethod
    def count(plan) -> int:
        """Runs the sweep will train: new ones and stopped ones it continues."""
        return sum(r.run_id is None or r.status in runs.STOPPED for r in plan.runs)
