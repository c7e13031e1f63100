"""The model chooser: an exported ONNX file, or (with a project open) one of its finished runs or a group.

An ONNX file is read at once (its card, checked against the file, and an onnxruntime session: a few
milliseconds). A run or a group loads on a pool thread, because :mod:`trainer.train.classifier` imports
torch (seconds on a cold start) and reads checkpoints; nothing imports torch until the user picks one.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout,
)

from trainer.infer.classify import ClassifyError, OnnxModel
from trainer.runs import DONE

from ..workers import Task, start
from .jobs import load_runs_classifier, one_line

PICK = "Choose a run or group..."


def card_summary(model) -> str:
    """A few lines that say which model this is and how it was made (from its card where it has one)."""
    lines = [f"<b>{model.identity}</b>", "classes: " + ", ".join(model.classes)]
    card = getattr(model, "card", None)
    if card:
        m, run = card["model"], card.get("run") or {}
        lines.append(f"{m['arch']}{' (int8)' if m.get('quantized_from') else ''}, "
                     f"{card['features'].get('kind', '?')} features at {card['prep']['sample_rate']} Hz, "
                     f"{card['prep']['duration']:g} s windows")
        if run:
            metrics = run.get("metrics") or {}
            score = f", score {metrics['score']:.3f}" if isinstance(metrics.get("score"), (int, float)) else ""
            lines.append(f"run {run.get('id')} ({run.get('kind', 'teacher')}){score}")
        lines.append(f"file {Path(m.get('file') or '').name}, sha256 {m['sha256'][:12]}")
    else:
        members = len(getattr(model, "models", []))
        lines.append(f"{members} torch model{'s' if members != 1 else ''}"
                     f"{' (the mean of their logits)' if members > 1 else ''}, feature set {model.feature_set.name}")
    return "<br>".join(line for line in lines if line)


class ModelChooser(QGroupBox):
    """Says which model classifies; ``modelChanged`` carries the model (or None after a failed load)."""

    modelChanged = Signal(object)
    statusMessage = Signal(str)

    def __init__(self, project_model=None, allow_runs: bool = True, parent=None):
        super().__init__("Model", parent)
        self.project_model = project_model
        self.allow_runs = allow_runs
        self.model = None
        self.loading: Task | None = None
        self.open_button = QPushButton("Open ONNX...")
        self.open_button.setToolTip("A model exported with `rsc export` (its .card.json beside it)")
        self.open_button.clicked.connect(self.ask_onnx)
        self.runs = QComboBox()
        self.runs.setToolTip("A finished run of the open project, or a group of runs averaged (an ensemble)")
        self.runs.activated.connect(self._run_chosen)
        self.summary = QLabel("No model yet: open an exported .onnx file" + (" or pick a run" if allow_runs else ""))
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.runs, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.summary)
        self.runs.setVisible(allow_runs)
        if project_model is not None and allow_runs:
            project_model.projectChanged.connect(lambda _p: self.fill_runs())
            project_model.runsChanged.connect(lambda _ids: self.fill_runs())
        self.fill_runs()

    # -- the project's runs ----------------------------------------------------------------------
    def fill_runs(self) -> None:
        project = self.project_model.project if self.project_model is not None else None
        current = self.runs.currentData()
        self.runs.clear()
        self.runs.addItem(PICK if project is not None else "(no project open)", None)
        if project is None:
            self.runs.setEnabled(False)
            return
        done = [r for r in self.project_model.runs() if r.status == DONE]
        for group in sorted({r.group for r in done if r.group}):
            count = sum(r.group == group for r in done)
            members = f"{count} runs, averaged" if count > 1 else "1 run"
            self.runs.addItem(f"group {group} ({members})", ("group", group))
        for run in done:
            self.runs.addItem(f"run {run.id} ({run.arch}, {run.group or 'no group'})", ("run", run.id))
        self.runs.setEnabled(self.runs.count() > 1)
        index = self.runs.findData(current)
        self.runs.setCurrentIndex(max(0, index))

    def _run_chosen(self, index: int) -> None:
        data = self.runs.itemData(index)
        if data:
            kind, name = data
            self.load_runs(run_id=name if kind == "run" else None, group=name if kind == "group" else None)

    def load_runs(self, run_id: str | None = None, group: str | None = None) -> Task | None:
        """Load a run or a group on a pool thread; returns the task (tests wait on it)."""
        project = self.project_model.project if self.project_model is not None else None
        if project is None:
            return None
        if self.loading is not None:
            self.loading.cancel()
        task = Task(load_runs_classifier, str(project.path), run_id, group, name="load classifier")
        self.loading = task
        self.summary.setText(f"Loading {'run ' + run_id if run_id else 'group ' + str(group)}...")
        task.signals.finished.connect(lambda model: self._loaded(task, model))
        task.signals.failed.connect(lambda exc, _tb: self._failed(task, one_line(exc)))
        start(task)
        return task

    def _loaded(self, task: Task, model) -> None:
        if task is self.loading:
            self.loading = None
            self.set_model(model)

    def _failed(self, task: Task, message: str) -> None:
        if task is self.loading:
            self.loading = None
            self.set_model(None, message)

    # -- ONNX files ------------------------------------------------------------------------------
    def ask_onnx(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an exported model", str(Path.home()),
                                              "ONNX models (*.onnx);;All files (*)")
        if path:
            self.load_onnx(path)

    def load_onnx(self, path: str | Path) -> bool:
        try:
            model = OnnxModel(path)
        except ClassifyError as exc:
            self.set_model(None, one_line(exc))
            return False
        self.runs.setCurrentIndex(0)
        self.set_model(model)
        return True

    def set_model(self, model, error: str | None = None) -> None:
        self.model = model
        if model is None:
            self.summary.setText(f"<span style='color:#c62828'>{error}</span>" if error else "No model")
            if error:
                self.statusMessage.emit(error)
        else:
            self.summary.setText(card_summary(model))
        self.modelChanged.emit(model)
