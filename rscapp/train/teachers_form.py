"""Where a student's soft labels come from: the teacher group, the target mode, k, temperature and the
weight of the hard labels (the options ``rsc distill`` and ``rsc sweep`` share)."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QLineEdit, QSpinBox, QWidget

from trainer.distill.presets import PRESETS
from trainer.jobs.specs import DistillChoices
from trainer.runs import Run

MODE_LABELS = {
    "mean": "mean of the teachers' probabilities",
    "random": "one random teacher per cycle and epoch",
    "curated": "mean of the k best teachers",
    "single": "one teacher",
    "noise-const": "hard labels plus constant noise (no teacher)",
    "noise-teacher-var": "hard labels plus noise of the teachers' spread",
    "raw-logits": "mean of the teachers' raw logits",
    "ced": "replayed augmented views of the teachers",
}


def finished_groups(all_runs: Sequence[Run]) -> dict[str, int]:
    """Groups with finished runs and how many each has: teacher groups first, then student groups (any
    of them can teach: students make second-generation teachers)."""
    counts: dict[str, int] = {}
    students: set[str] = set()
    for run in all_runs:
        if run.finished:
            counts[run.group] = counts.get(run.group, 0) + 1
            if run.kind == "student":
                students.add(run.group)
    return dict(sorted(counts.items(), key=lambda item: (item[0] in students, item[0])))


def _double(low: float, high: float, value: float, step: float, decimals: int = 2) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(decimals)
    spin.setSingleStep(step)
    spin.setValue(value)
    return spin


class TeachersForm(QWidget):
    changed = Signal()

    def __init__(self, all_runs: Sequence[Run], with_k: bool = True, parent=None):
        super().__init__(parent)
        self.counts = finished_groups(all_runs)
        self.group = QComboBox()
        for name, n in self.counts.items():
            self.group.addItem(f"{name}  ({n} finished)", name)
        self.mode = QComboBox()
        for mode, label in MODE_LABELS.items():
            self.mode.addItem(f"{mode}: {label}", mode)
        self.k = QSpinBox()
        self.k.setSpecialValueText("all finished")
        self.temperature = _double(0.05, 50.0, 1.0, 0.5)
        self.temperature.setToolTip("Softmax temperature of the soft labels (1: none)")
        self.hard_weight = _double(0.0, 1.0, 0.0, 0.1)
        self.hard_weight.setToolTip("Weight of the hard-label loss beside the soft one (0: soft labels only)")
        self.noise_var = _double(0.0, 10.0, 0.1, 0.05, 3)
        self.noise_var.setToolTip("Noise variance of mode noise-const")
        self.passes = QSpinBox()
        self.passes.setRange(1, 64)
        self.passes.setValue(4)
        self.passes.setToolTip("Mode ced: the teachers' augmented views per cycle (the first student makes any not "
                               "stored yet, as rsc logits --passes does)")
        self.view_seed = QSpinBox()
        self.view_seed.setRange(0, 2**31 - 1)
        self.view_seed.setToolTip("Mode ced: the seed of the views' augmentations (rsc logits --view-seed)")
        self.preset = QComboBox()
        self.preset.addItem("none: the temperature and weight below", None)
        self.preset.addItem("efficientat: 0.1 x labels + 0.9 x teachers, T 1", "efficientat")
        self.preset.addItem("cp-jku: 0.02 x CE + 0.98 x T\u00b2 x KL, T 2", "cp-jku")
        self.feature_weight = _double(0.0, 100.0, 0.0, 0.5)
        self.feature_weight.setSpecialValueText("off")
        self.feature_weight.setToolTip("Also learn the first teacher's feature maps through a 1x1-conv projector, "
                                       "with this weight on their MSE (seed paper 004); 0: off")
        self.layers = QLineEdit("auto, auto")
        self.layers.setToolTip("The teacher's and the student's layer, e.g. conv_block3, auto (auto: the last map)")
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Teacher group", self.group)
        form.addRow("Mode", self.mode)
        if with_k:
            form.addRow("Teachers (k)", self.k)
        form.addRow("Loss weighting", self.preset)
        form.addRow("Temperature", self.temperature)
        form.addRow("Hard-label weight", self.hard_weight)
        form.addRow("Noise variance", self.noise_var)
        form.addRow("Feature distillation", self.feature_weight)
        form.addRow("Layers (teacher, student)", self.layers)
        form.addRow("Views per cycle", self.passes)
        form.addRow("View seed", self.view_seed)
        self.group.currentIndexChanged.connect(self._update)
        self.mode.currentIndexChanged.connect(self._update)
        self.preset.currentIndexChanged.connect(self._update)
        self.feature_weight.valueChanged.connect(self._update)
        for spin in (self.k, self.passes, self.view_seed):  # which teachers, and which stored views
            spin.valueChanged.connect(lambda _: self.changed.emit())
        self._update()

    def teachers_group(self) -> str:
        return self.group.currentData() or ""

    def set_group(self, name: str) -> None:
        self.group.setCurrentIndex(max(0, self.group.findData(name)))

    def set_mode(self, mode: str) -> None:
        self.mode.setCurrentIndex(self.mode.findData(mode))

    def _update(self) -> None:
        mode = self.mode.currentData()
        self.k.setRange(0, max(0, self.counts.get(self.teachers_group(), 0)))
        self.k.setEnabled(mode not in ("single", "noise-const", "ced"))
        self.noise_var.setEnabled(mode == "noise-const")
        self.passes.setEnabled(mode == "ced")
        preset = self.preset.currentData()
        self.temperature.setEnabled(preset is None)
        self.hard_weight.setEnabled(preset is None)
        if preset is not None:  # show what the preset sets; the job takes the preset's values
            self.temperature.setValue(PRESETS[preset]["temperature"])
            self.hard_weight.setValue(PRESETS[preset]["hard_weight"])
        self.feature_weight.setEnabled(mode != "ced")
        self.layers.setEnabled(mode != "ced" and self.feature_weight.value() > 0)
        self.view_seed.setEnabled(mode == "ced")
        self.changed.emit()

    def effective_k(self) -> int:
        """How many teachers the choices take (for the default group name)."""
        mode = self.mode.currentData()
        if mode == "noise-const":
            return 0
        if mode == "single":
            return 1
        return self.k.value() or self.counts.get(self.teachers_group(), 0)

    def choices(self) -> DistillChoices:
        mode = self.mode.currentData()
        k = None if mode in ("single", "ced") or not self.k.value() else self.k.value()
        preset = self.preset.currentData()
        feature = None
        if self.feature_weight.value() > 0 and mode != "ced":
            names = [part.strip() or "auto" for part in self.layers.text().split(",")] + ["auto", "auto"]
            feature = {"weight": self.feature_weight.value(), "teacher_layer": names[0], "student_layer": names[1]}
        return DistillChoices(
            teachers=self.teachers_group(), mode=mode, k=k,
            temperature=None if preset else self.temperature.value(),
            hard_weight=None if preset else self.hard_weight.value(), noise_var=self.noise_var.value(),
            passes=self.passes.value(), view_seed=self.view_seed.value(), preset=preset, feature=feature,
        )
