"""The selected run in words: its settings, then one line per finished epoch (the lines ``rsc train``
prints, from ``trainer.runs.run_epochs``), then how it ended or what it is doing now."""

from __future__ import annotations

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QPlainTextEdit

from trainer import runs
from trainer.cli.progress import format_epoch_line, format_metrics
from trainer.project import Project
from trainer.runs import Run

from .failures import failure_line
from .queue_table import INTERRUPTED, run_row


def settings_line(run: Run) -> str:
    s = run.spec
    line = (f"{s.get('epochs')} epochs, batch {s.get('batch_size')}, lr {s.get('lr', 0):g}, {s.get('device')}, "
            f"checkpoint {s.get('select')}")
    if s.get("pretrained"):
        line += f", pretrained {s['pretrained']}"
    if s.get("model_args"):
        line += ", " + " ".join(f"{k}={v}" for k, v in s["model_args"].items())
    return line


def targets_line(run: Run) -> str:
    t = run.spec.get("targets") or {}
    if t.get("kind") != "soft":
        return "hard labels"
    teachers = t.get("teachers") or []
    source = f"{len(teachers)} teachers of {t.get('teacher_group', '?')}" if teachers else "no teacher"
    return (f"soft labels ({t.get('mode')}) from {source}, temperature {t.get('temperature')}, "
            f"hard-label weight {t.get('hard_weight')}")


def _epoch_line(entry: dict) -> str:
    try:
        return format_epoch_line(entry)
    except (KeyError, TypeError, ValueError):  # a row written by an older version: show what it has
        return "epoch " + ", ".join(f"{k} {v}" for k, v in entry.items() if k != "at")


def run_text(project: Project, run: Run) -> str:
    row = run_row(run)
    lines = [f"{run.id}: {run.kind} {run.arch} seed {run.seed}, group {run.group}",
             f"  {settings_line(run)}", f"  {targets_line(run)}", ""]
    lines += [_epoch_line(entry) for entry in runs.run_epochs(project, run.id)]
    if row.status == runs.DONE:
        lines.append(f"done: {format_metrics(run.metrics)}")
    elif row.status == runs.FAILED:
        lines += [f"failed: {failure_line(run.error)}", "", (run.error or "").rstrip()]
    elif row.status in (runs.RUNNING, runs.CANCELLING, INTERRUPTED, runs.CANCELLED, runs.QUEUED):
        lines.append(f"{row.status}: {row.progress}" + (f", {row.message}" if row.message else "")
                     + (f", about {row.eta} left" if row.eta else ""))
    return "\n".join(lines)


class EpochLines(QPlainTextEdit):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setObjectName("epochLines")
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)  # an error reads without scrolling
        self.run_id: str | None = None
        self.setPlaceholderText("Select a run to see its settings and its epochs as they finish.")

    def show_run(self, project: Project | None, run: Run | None) -> None:
        text = run_text(project, run) if project is not None and run is not None else ""
        same_run = run is not None and run.id == self.run_id
        self.run_id = run.id if run is not None else None
        if text == self.toPlainText():
            return
        bar = self.verticalScrollBar()
        follow = bar.value() >= bar.maximum() - 2 if same_run else run is not None and run.active
        self.setPlainText(text)
        # A run still training is followed at its newest epoch (unless the user scrolled up to read);
        # any other run opens at its top, where its settings and how it ended are.
        bar.setValue(bar.maximum() if follow else 0)
