"""Collaborative models (seed paper 002): one model per input representation, trained together in one
lockstep job per seed, each learning from the labels and from the mean of its peers' predictions. The
jobs are the ones ``trainer.jobs.specs.collab_jobs`` makes from the same choices, as the CLI makes them."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QVBoxLayout

from trainer.jobs.specs import COLLAB_SETS, CollabChoices, CollabJobs, collab_jobs, default_collab_group
from trainer.project import Project

from .job_dialog import JobDialog
from .settings_form import SettingsForm

REPRESENTATION_LABELS = {
    "cnn": "cnn: log-mel filterbank",
    "stft": "stft: linear-frequency STFT",
    "mfcc": "mfcc: mel-frequency cepstral coefficients",
}


def _double(low: float, high: float, value: float, step: float, tooltip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(2)
    spin.setSingleStep(step)
    spin.setValue(value)
    spin.setToolTip(tooltip)
    return spin


class CollabDialog(JobDialog):
    """A SettingsForm for the models (every representation gets the same architecture and settings), the
    representations to train together, and the weight and temperature of the KL to the peers."""

    def __init__(self, project: Project, parent=None, arch: str = "cnn6", queue=None):
        super().__init__(project, "Collaborative models", parent, queue)
        defaults = CollabChoices()
        self.sets = {name: QCheckBox(REPRESENTATION_LABELS.get(name, name)) for name in COLLAB_SETS}
        for name, box in self.sets.items():
            box.setChecked(name in defaults.representations)
        self.peer_weight = _double(0.0, 100.0, defaults.peer_weight, 0.1,
                                   "Weight w of the KL to the mean of the peers' predictions (0: each model alone)")
        # The core refuses T <= 0; the spin box's floor keeps the field from offering it.
        self.temperature = _double(0.05, 50.0, defaults.temperature, 0.5,
                                   "Softmax temperature T of the peers' predictions and the model's own (1: none)")
        self.groups = QLabel()
        self.groups.setObjectName("collabGroups")
        self.groups.setWordWrap(True)
        self.form = SettingsForm(arch=arch, seeds="1-5")
        self.form.form.labelForField(self.form.group).setText("Group prefix")
        intro = QLabel("One model per representation, trained together: each learns from the labels and from "
                       "the mean of its peers' predictions on the same batch (KL at temperature T, weight w).")
        intro.setWordWrap(True)
        self.body.addWidget(intro)
        self.body.addWidget(self._collab_box())
        models = QGroupBox("Models (one per representation and seed)")
        QVBoxLayout(models).addWidget(self.form)
        self.body.addWidget(models)
        for box in self.sets.values():
            box.toggled.connect(lambda _checked: self._update())
        self.form.archChanged.connect(lambda _arch: self._update())
        self.form.group.textChanged.connect(lambda _text: self._update())
        self._update()

    def _collab_box(self) -> QGroupBox:
        box = QGroupBox("Representations and peers")
        form = QFormLayout(box)
        ticks = QVBoxLayout()
        for check in self.sets.values():
            ticks.addWidget(check)
        form.addRow("Representations", ticks)
        form.addRow("", self.groups)
        form.addRow("Peer weight (w)", self.peer_weight)
        form.addRow("Temperature (T)", self.temperature)
        return box

    def representations(self) -> list[str]:
        return [name for name, box in self.sets.items() if box.isChecked()]

    def _update(self) -> None:
        default = default_collab_group(self.form.arch.currentText())
        self.form.group.setPlaceholderText(default)
        prefix = self.form.group.text().strip() or default
        chosen = self.representations()
        self.groups.setText("Groups: " + ", ".join(f"{prefix}-{name}" for name in chosen) if len(chosen) > 1
                            else "Tick at least two representations: the models learn from each other.")
        self.form.runs_per_seed = len(chosen)
        self.form.count_seeds()

    def collab_choices(self) -> CollabChoices:
        return CollabChoices(representations=tuple(self.representations()), peer_weight=self.peer_weight.value(),
                             temperature=self.temperature.value())

    def make_jobs(self) -> CollabJobs:
        """One lockstep job per seed, as ``collab_jobs`` makes it; ``len`` of it (JobDialog.count) is its runs."""
        return collab_jobs(self.project, self.form.choices(), self.collab_choices())
