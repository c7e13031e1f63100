"""The main window's status bar: recordings, cycles per split and class, missing audio, and the training
runs per status. They follow the model, like every view, so a run the worker finishes shows here at once."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from trainer.runs import summary
from trainer.vocab import LABELS

from .model import ProjectModel
from .style import LABEL_COLORS


def counts_text(counts: dict) -> str:
    parts = [f"{counts['recordings']} recordings"]
    for split, per in counts["cycles"].items():
        if split == "all":
            continue
        by_class = " / ".join(f"<span style='color:{LABEL_COLORS[name]}'>{per[name]}</span>" for name in LABELS)
        parts.append(f"{split}: {per['total']} cycles ({by_class})")
    problems = counts["audio_problems"]
    if problems:
        parts.append(f"<span style='color:#c62828'><b>{problems} missing audio</b></span>")
    else:
        parts.append("audio ok")
    return " &nbsp;|&nbsp; ".join(parts)


class StatusCounts(QLabel):
    def __init__(self, model: ProjectModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.setObjectName("statusCounts")
        self.setToolTip("Cycles per split: normal / crackle / wheeze / both")
        model.projectChanged.connect(self.update_counts)
        model.recordingsChanged.connect(self.update_counts)
        model.cyclesChanged.connect(self.update_counts)
        self.update_counts()

    def update_counts(self, *_) -> None:
        self.setText(counts_text(self.model.counts()) if self.model.project is not None else "No project")


def runs_text(counts: dict[str, int]) -> str:
    return "runs: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) if counts else ""


class StatusRuns(QLabel):
    def __init__(self, model: ProjectModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.setObjectName("statusRuns")
        self.setToolTip("Training runs in this project, per status")
        model.projectChanged.connect(self.update_runs)
        model.runsChanged.connect(self.update_runs)
        self.update_runs()

    def update_runs(self, *_) -> None:
        self.setText(runs_text(summary(self.model.runs())))
        self.setVisible(bool(self.text()))
