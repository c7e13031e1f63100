"""The training settings every job dialog shares (the options of ``rsc train``), as one form.

Empty fields mean the model family's default, exactly as an option left out of ``rsc train`` does; the
field shows what that default is for the chosen architecture.
"""

from __future__ import annotations

import atexit
import threading

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QWidget,
)

from trainer.jobs.specs import SpecError, TrainChoices, parse_model_args
from trainer.models import list_models, model_entry
from trainer.train import SELECTIONS, TrainError, TrainSpec, parse_seeds

from .devices import device_options

SELECTION_LABELS = {
    "last": "last epoch",
    "val": "best on a validation split (patient-disjoint, from train)",
    "test": "best on test (reference protocol; optimistic)",
}
_INFO: dict[str, dict] = {}  # model_info per architecture, computed once per app
_COUNTING = threading.Lock()
_COUNTERS: set[threading.Thread] = set()


@atexit.register
def _wait_for_counters() -> None:
    # A daemon thread still inside torch when the interpreter finalises aborts the process (std::terminate,
    # exit status 134); counting takes a few seconds at most.
    for thread in list(_COUNTERS):
        thread.join(60)


def _si(value: float) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value:.0f}"


def describe_model(info: dict) -> str:
    """One short line: parameters, MACs per 8-s cycle, the features it reads."""
    return (f"{_si(info['params'])} parameters, {_si(info['macs_per_cycle'])} MACs per 8-s cycle, "
            f"{info['feature_set']} features")


def model_facts(name: str) -> dict:
    """``trainer.models.model_info`` (runs on a thread of its own). One at a time: counting MACs on the meta
    device installs torch modes that two threads counting at once would mix up."""
    from trainer.models import model_info

    with _COUNTING:
        return model_info(name)


class SettingsForm(QWidget):
    """Architecture, seeds, group, epochs, batch size, learning rate, device, checkpoint, pretrained, settings."""

    archChanged = Signal(str)
    factsReady = Signal(str, object)  # architecture, model_info or the exception that stopped it

    def __init__(self, arch: str = "cnn6", seeds: str = "1-5", parent=None):
        super().__init__(parent)
        self.arch = QComboBox()
        self.arch.addItems(list_models())
        self.arch.setToolTip("Any registered model can be teacher or student; -tiny models are for quick tries on CPU")
        self.model_line = QLabel()
        self.model_line.setObjectName("modelFacts")
        self.runs_per_seed = 1  # a sweep makes one run per seed and teacher count
        self.seeds = QLineEdit(seeds)
        self.seeds.setToolTip("One run per seed: 1-5, 1,3,5 or 2")
        self.seed_count = QLabel()
        self.group = QLineEdit()
        self.epochs = self._default_spin(1, 100_000)
        self.batch_size = self._default_spin(2, 65_536)
        self.lr = QLineEdit()
        self.lr.setToolTip("Adam learning rate; empty: the family's default")
        self.device = QComboBox()
        for value, label in device_options():
            self.device.addItem(label, value)
        self.select = QComboBox()
        self.select.addItem("default", None)  # the recipe's (val for the CPU recipe), as `rsc train` without --select
        for value in SELECTIONS:
            self.select.addItem(SELECTION_LABELS[value], value)
        self.pretrained = QLineEdit()
        self.pretrained.setPlaceholderText("none: random initialisation")
        self.pretrained_file = QPushButton("File...")
        self.pretrained_folder = QPushButton("Folder...")
        self.model_args = QLineEdit()
        self.model_args.setPlaceholderText("e.g. channels=32,64,128,256 dropout=0.2")
        self.model_args.setToolTip("Model settings as KEY=VALUE, separated by spaces (rsc train --model-arg)")
        self._build()
        self.arch.currentTextChanged.connect(self._arch_changed)
        self.factsReady.connect(self._facts_ready)
        self.seeds.textChanged.connect(self.count_seeds)
        self.pretrained_file.clicked.connect(self._pick_file)
        self.pretrained_folder.clicked.connect(self._pick_folder)
        self.arch.setCurrentText(arch)
        self._arch_changed(self.arch.currentText())
        self.count_seeds()

    @staticmethod
    def _default_spin(low: int, high: int) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low - 1, high)  # the value below the range is "the default"
        spin.setValue(low - 1)
        return spin

    def _build(self) -> None:
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Architecture", self.arch)
        form.addRow("", self.model_line)
        seeds = QHBoxLayout()
        seeds.addWidget(self.seeds, 1)
        seeds.addWidget(self.seed_count)
        form.addRow("Seeds", seeds)
        form.addRow("Group", self.group)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)
        form.addRow("Device", self.device)
        form.addRow("Checkpoint", self.select)
        weights = QHBoxLayout()
        weights.addWidget(self.pretrained, 1)
        weights.addWidget(self.pretrained_file)
        weights.addWidget(self.pretrained_folder)
        form.addRow("Pretrained weights", weights)
        form.addRow("Model settings", self.model_args)
        self.form = form

    # -- what the fields say ----------------------------------------------------------------------
    def _arch_changed(self, arch: str) -> None:
        try:
            defaults = TrainSpec(arch=arch, device="cpu").resolved()
        except TrainError:
            return
        self.epochs.setSpecialValueText(f"default ({defaults.epochs})")
        self.batch_size.setSpecialValueText(f"default ({defaults.batch_size})")
        self.lr.setPlaceholderText(f"default ({defaults.lr:g})")
        self.select.setItemText(0, f"default: {SELECTION_LABELS[defaults.select]}")
        self.group.setPlaceholderText(self.default_group())
        self.pretrained.setToolTip(f"{arch}: {model_entry(arch).pretrained}")
        self._show_facts(arch)
        self.archChanged.emit(arch)

    def default_group(self) -> str:
        return self.arch.currentText()

    def _show_facts(self, arch: str) -> None:
        if arch in _INFO:
            self.model_line.setText(describe_model(_INFO[arch]))
            return
        self.model_line.setText("counting parameters and MACs...")
        thread = threading.Thread(target=self._count, args=(arch,), name=f"model info {arch}", daemon=True)
        _COUNTERS.add(thread)
        thread.start()

    def _count(self, arch: str) -> None:
        # A plain Python thread: torch's meta-device kernels fail on QThreadPool threads (rscapp.workers).
        try:
            result = model_facts(arch)
        except Exception as exc:  # noqa: BLE001 - a model that cannot be built says so in the dialog
            result = exc
        try:
            self.factsReady.emit(arch, result)
        except (RuntimeError, TypeError):  # the dialog closed meanwhile (TypeError: Qt already gone at exit)
            pass
        finally:
            _COUNTERS.discard(threading.current_thread())

    def _facts_ready(self, arch: str, result) -> None:
        if isinstance(result, dict):
            _INFO[arch] = result
        if self.arch.currentText() == arch:
            self.model_line.setText(describe_model(result) if isinstance(result, dict)
                                    else f"could not build {arch}: {result}")

    def count_seeds(self) -> None:
        try:
            n = len(parse_seeds(self.seeds.text())) * self.runs_per_seed
        except ValueError:
            self.seed_count.setText("not a seed list")
            return
        self.seed_count.setText(f"{n} run{'s' if n != 1 else ''}")

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Pretrained weights", self.pretrained.text(),
                                              "Weights (*.pth *.pt *.safetensors *.bin);;All files (*)")
        if path:
            self.pretrained.setText(path)

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Pretrained checkpoint folder", self.pretrained.text())
        if path:
            self.pretrained.setText(path)

    # -- the choices --------------------------------------------------------------------------------
    def choices(self) -> TrainChoices:
        """The form as ``rsc train`` options (raises SpecError with a one-line reason)."""
        lr = self.lr.text().strip()
        try:
            lr_value = float(lr) if lr else None
        except ValueError:
            raise SpecError(f"learning rate {lr!r} is not a number") from None
        items = self.model_args.text().split()
        parse_model_args(items, option="model setting")  # a typo is named here, in the dialog's words
        return TrainChoices(
            arch=self.arch.currentText(), seeds=self.seeds.text(), group=self.group.text().strip() or None,
            epochs=self._spin_value(self.epochs), batch_size=self._spin_value(self.batch_size), lr=lr_value,
            device=self.device.currentData(), pretrained=self.pretrained.text().strip() or None,
            select=self.select.currentData(), model_args=items,
        )

    @staticmethod
    def _spin_value(spin: QSpinBox) -> int | None:
        return None if spin.value() == spin.minimum() else spin.value()

    def set_device(self, value: str) -> None:
        index = self.device.findData(value)
        if index >= 0:
            self.device.setCurrentIndex(index)

    def set_select(self, value: str) -> None:
        self.select.setCurrentIndex(self.select.findData(value))
