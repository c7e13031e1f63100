"""The queue: every run of the project with its status, a progress bar, the time left and one line
that says what happened (a failed run's error, an interrupted run's way back).

Rows come from the model layer's runs (``ProjectModel.runs``); a change repaints only the rows whose
run changed, and a run that came or went resets the table (the view keeps the selection by run id).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QRect, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionProgressBar

from trainer import runs
from trainer.cli.progress import format_duration
from trainer.runs import Run

from .failures import failure_line

INTERRUPTED = "interrupted"  # running in the project, but the process training it is gone
STATUS_COLORS = {
    runs.QUEUED: "#546e7a", runs.RUNNING: "#1565c0", runs.CANCELLING: "#6a1b9a", runs.DONE: "#2e7d32",
    runs.FAILED: "#c62828", runs.CANCELLED: "#757575", INTERRUPTED: "#ef6c00",
}
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 1  # fraction done, 0-1, or None
# The counted phases before a run's first epoch: its features, its outputs, a CED student's teacher views.
PHASE_NAMES = {"features": "features", "logits": "outputs", "views": "teacher views"}


@dataclass
class RunRow:
    """What the table shows of one run, worked out once per change."""

    run: Run
    status: str
    fraction: float | None
    progress: str
    eta: str
    score: str
    message: str


def _age_s(stamp: str | None) -> float:
    if not stamp:
        return 0.0
    try:
        then = datetime.fromisoformat(stamp)
    except ValueError:
        return 0.0
    return max(0.0, (datetime.now(timezone.utc) - then).total_seconds())


def _progress(run: Run, status: str) -> tuple[float | None, str]:
    """Fraction done (None: no bar, only the text) and the text in the bar."""
    epochs = int(run.spec.get("epochs") or 0)
    if status == runs.DONE:
        return 1.0, f"{run.epoch}/{epochs} epochs"
    p = run.progress
    phase = p.get("phase")
    if status in (runs.RUNNING, runs.CANCELLING):
        if phase == "train" and p.get("epochs"):
            # Inside an epoch: the epoch being trained and its batch. Once the epoch is stored (run.epoch)
            # the batch of its last progress write is stale.
            if p.get("batches") and p["epoch"] > run.epoch:
                done = p["epoch"] - 1 + p.get("batch", 0) / p["batches"]
                text = f"epoch {p['epoch']}/{p['epochs']}, batch {p.get('batch', 0)}/{p['batches']}"
                return min(1.0, done / p["epochs"]), text
            return min(1.0, p["epoch"] / p["epochs"]), f"epoch {p['epoch']}/{p['epochs']} done"
        if phase in PHASE_NAMES and p.get("total"):
            return p.get("done", 0) / p["total"], f"{PHASE_NAMES[phase]} {p.get('done', 0)}/{p['total']}"
        return 0.0, "starting"
    if not run.epoch:
        return None, "waiting" if status == runs.QUEUED else f"0/{epochs} epochs"
    return (run.epoch / epochs if epochs else None), f"{run.epoch}/{epochs} epochs"


def _eta(run: Run, status: str) -> str:
    p = run.progress
    if status != runs.RUNNING or p.get("eta_s") is None:
        return ""
    return format_duration(max(0.0, float(p["eta_s"]) - _age_s(p.get("at"))))


def _score(run: Run) -> str:
    score = run.metrics.get("score")
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return ""
    return f"{score:.2f}" + (" (test-selected)" if run.metrics.get("selection") == "test" else "")


def _message(run: Run, status: str) -> str:
    if status == runs.FAILED:
        return failure_line(run.error)
    if status in (INTERRUPTED, runs.CANCELLED):
        what = "the process training it is gone" if status == INTERRUPTED else "cancelled"
        if run.kind == runs.LOCKSTEP_KIND:  # its models train together from epoch 1: none resumes alone
            return f"{what}: a collaborative job cannot resume; Run again trains the whole job again"
        if not run.epoch:
            return f"{what} during epoch 1: resume starts it again"
        return f"{what} after epoch {run.epoch}: resume continues from there"
    if status == runs.CANCELLING:
        return "stopping after the current batch"
    if status == runs.DONE:
        m = run.metrics
        return f"Sp {m.get('sp', float('nan')):.2f}  Se {m.get('se', float('nan')):.2f}  (epoch {m.get('epoch')}, " \
               f"selection {m.get('selection')})"
    if status == runs.QUEUED:
        return "waiting for the worker" + (f" (continues after epoch {run.epoch})" if run.epoch else "")
    return f"in process {run.owner_pid}" if run.owner_pid else ""


def status_of(run: Run) -> str:
    return INTERRUPTED if run.active and not run.owner_alive() else run.status


def run_row(run: Run) -> RunRow:
    status = status_of(run)
    fraction, progress = _progress(run, status)
    return RunRow(run, status, fraction, progress, _eta(run, status), _score(run), _message(run, status))


COLUMNS = ("Run", "Group", "Model", "Seed", "Status", "Progress", "ETA", "Score", "Message")
WIDTHS = (260, 220, 110, 44, 90, 170, 60, 70, 380)
PROGRESS_COLUMN = COLUMNS.index("Progress")
STATUS_COLUMN = COLUMNS.index("Status")


class QueueModel(QAbstractTableModel):
    """Runs, newest first."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[RunRow] = []
        self._index: dict[str, int] = {}

    def set_runs(self, all_runs: Sequence[Run], changed: Sequence[str] | None = None) -> None:
        ordered = sorted(all_runs, key=lambda r: (r.created_at or "", r.id), reverse=True)
        ids = [r.id for r in ordered]
        if changed is not None and ids == [row.run.id for row in self.rows]:
            wanted = set(changed)
            for position, run in enumerate(ordered):
                if run.id in wanted:
                    self.rows[position] = run_row(run)
                    self.dataChanged.emit(self.index(position, 0), self.index(position, len(COLUMNS) - 1))
            return
        self.beginResetModel()
        self.rows = [run_row(run) for run in ordered]
        self._index = {run_id: i for i, run_id in enumerate(ids)}
        self.endResetModel()

    def row_of(self, run_id: str) -> int | None:
        return self._index.get(run_id)

    def row_for(self, run_id: str) -> RunRow | None:
        position = self.row_of(run_id)
        return None if position is None else self.rows[position]

    # -- Qt ---------------------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == PROGRESS_ROLE and column == "Progress":
            return row.fraction
        if role == Qt.ItemDataRole.ForegroundRole and column in ("Status", "Message"):
            if row.status in (runs.FAILED, INTERRUPTED) or column == "Status":
                return QColor(STATUS_COLORS.get(row.status, "#000000"))
        if role == Qt.ItemDataRole.ToolTipRole and column == "Message" and row.status == runs.FAILED:
            return row.run.error
        if role == Qt.ItemDataRole.ToolTipRole and column == "Run":
            return row.run.id
        return None

    @staticmethod
    def _text(row: RunRow, column: str) -> str:
        run = row.run
        return {
            "Run": run.id, "Group": run.group, "Model": run.arch, "Seed": str(run.seed), "Status": row.status,
            "Progress": row.progress, "ETA": row.eta, "Score": row.score, "Message": row.message,
        }[column]


class ProgressDelegate(QStyledItemDelegate):
    """A progress bar in the Progress column, its text inside the bar."""

    def paint(self, painter, option, index) -> None:
        fraction = index.data(PROGRESS_ROLE)
        if fraction is None:
            super().paint(painter, option, index)
            return
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())
        bar = QStyleOptionProgressBar()
        bar.rect = QRect(option.rect.adjusted(2, 3, -2, -3))
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = int(round(max(0.0, min(1.0, fraction)) * 1000))
        bar.text = index.data(Qt.ItemDataRole.DisplayRole) or ""
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        style = option.widget.style() if option.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, option.widget)
