"""New teacher ensemble: one hard-label run per seed, the jobs ``rsc train`` makes from the same choices."""

from __future__ import annotations

from trainer.jobs.specs import check_specs, teacher_specs
from trainer.project import Project

from .job_dialog import JobDialog
from .settings_form import SettingsForm


class TeacherDialog(JobDialog):
    def __init__(self, project: Project, parent=None, arch: str = "cnn6", queue=None):
        super().__init__(project, "New teacher ensemble", parent, queue)
        self.form = SettingsForm(arch=arch, seeds="1-5")
        self.body.addWidget(self.form)

    def specs(self) -> list:
        """The TrainSpecs of the choices, as ``rsc train`` makes them."""
        specs = teacher_specs(self.form.choices())
        check_specs(specs)
        return specs

    def make_jobs(self) -> list:
        return self.specs()
