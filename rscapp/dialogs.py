"""Dialogs shared by the app: errors, progress of background tasks, About, import reports, relocate.

Every error a user can meet goes through :func:`show_error`: a short message that says what failed and
where (file, line), with the technical details (traceback) folded away in an expandable section.
Views call these through the module (``dialogs.show_error(...)``) so tests can replace them.
"""

from __future__ import annotations

import logging
import platform
import sys
import traceback
from typing import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QMessageBox,
    QProgressDialog,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from trainer.vocab import LABELS

from .workers import Task

log = logging.getLogger(__name__)


# -- errors ------------------------------------------------------------------------------------
def error_box(parent: QWidget | None, message: str, details: str | None = None, title: str = "RSC Studio") -> QMessageBox:
    """The error message box, not yet shown (tests inspect it; :func:`show_error` runs it)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    first, _, rest = message.partition("\n")
    box.setText(first)
    if rest.strip():
        box.setInformativeText(rest.strip())
    if details:
        box.setDetailedText(details)  # Qt shows a "Show Details..." button: folded by default
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return box


def show_error(parent: QWidget | None, message: str, details: str | None = None, title: str = "RSC Studio") -> None:
    """Show an error: ``message`` in plain words (names the file and line), ``details`` folded away."""
    log.error("%s%s", message, f"\n{details}" if details else "")
    error_box(parent, message, details, title).exec()


def show_exception(parent: QWidget | None, exc: BaseException, context: str = "", tb: str | None = None) -> None:
    """An exception as an error dialog: its message first (with ``context``), the traceback in details."""
    text = str(exc).strip() or type(exc).__name__
    message = f"{context}\n{text}" if context else text
    if tb is None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    show_error(parent, message, tb)


def ask_yes_no(parent: QWidget | None, question: str, title: str = "RSC Studio") -> bool:
    answer = QMessageBox.question(parent, title, question)
    return answer == QMessageBox.StandardButton.Yes


def show_info(parent: QWidget | None, message: str, title: str = "RSC Studio") -> None:
    QMessageBox.information(parent, title, message)


# -- progress -------------------------------------------------------------------------------------
class TaskProgressDialog(QProgressDialog):
    """A progress dialog bound to a :class:`~rscapp.workers.Task`: shows its progress, Cancel cancels
    it, and the dialog closes itself when the task is done. Window-modal, non-blocking: create it and
    start the task; it appears by itself once the task has run for 300 ms (short tasks never flash one)."""

    def __init__(self, parent: QWidget | None, title: str, task: Task, label: str = ""):
        super().__init__(label or title, "Cancel", 0, 0, parent)
        self.setWindowTitle(title)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumDuration(300)
        self.setAutoClose(False)
        self.setAutoReset(False)
        self.setMinimumWidth(420)
        self.task = task
        self._base_label = label or title
        task.signals.progress.connect(self._on_progress)
        task.signals.done.connect(self._on_done)
        self.canceled.connect(self._on_cancel)

    def _on_progress(self, done: int, total: int, message: str) -> None:
        if total > 0:
            self.setMaximum(total)
            self.setValue(min(done, total))
        else:
            self.setMaximum(0)
        text = self._base_label
        if message:
            text = f"{text}\n{message}"
        if total > 0:
            text = f"{text}\n{done} of {total}"
        self.setLabelText(text)

    def _on_cancel(self) -> None:
        self.task.cancel()
        self.setLabelText(f"{self._base_label}\nCancelling after the current item...")
        self.show()  # QProgressDialog hides itself on cancel; keep it up until the task really stops

    def _on_done(self) -> None:
        self.hide()
        self.deleteLater()


# -- About ------------------------------------------------------------------------------------------
def versions() -> list[tuple[str, str]]:
    """Names and versions of what the app runs on (shown in About and copied into bug reports)."""
    from PySide6 import QtCore

    import rscapp

    rows = [
        ("RSC Studio", rscapp.__version__),
        ("Python", platform.python_version()),
        ("Qt", QtCore.qVersion()),
    ]
    import PySide6

    rows.append(("PySide6", PySide6.__version__))
    for name in ("pyqtgraph", "numpy", "torch", "soundfile", "sounddevice", "sqlite_utils"):
        rows.append((name, _module_version(name)))
    import sqlite3

    rows.append(("SQLite", sqlite3.sqlite_version))
    rows.append(("Platform", platform.platform()))
    return rows


def _module_version(name: str) -> str:
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__version__", None):
        return str(module.__version__)
    # torch takes seconds to import: read the installed distribution's version without importing it.
    try:
        from importlib.metadata import version

        return version({"sqlite_utils": "sqlite-utils"}.get(name, name))
    except Exception:
        return "not installed"


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About RSC Studio")
        layout = QVBoxLayout(self)
        title = QLabel(
            "<h2>RSC Studio</h2><p>Respiratory sound classification research: listen to recordings, correct "
            "breathing-cycle labels, train teacher ensembles and distil them into small students.</p>"
        )
        title.setWordWrap(True)
        layout.addWidget(title)
        form = QFormLayout()
        self.rows = versions()
        for name, value in self.rows:
            label = QLabel(value)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(f"{name}:", label)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy versions", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self.copy_versions)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)

    def text(self) -> str:
        return "\n".join(f"{name}: {value}" for name, value in self.rows)

    def copy_versions(self) -> None:
        from PySide6.QtGui import QGuiApplication

        QGuiApplication.clipboard().setText(self.text())


# -- import reports ---------------------------------------------------------------------------------
class ReportDialog(QDialog):
    """The messages of an import: level, file:line, message; sortable, copyable."""

    def __init__(self, parent: QWidget | None, title: str, summary: str, messages: Sequence[Sequence]):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(900, 480)
        layout = QVBoxLayout(self)
        head = QLabel(summary)
        head.setWordWrap(True)
        layout.addWidget(head)
        self.table = QTableWidget(len(messages), 3, self)
        self.table.setHorizontalHeaderLabels(["Level", "Where", "Message"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        for row, message in enumerate(messages):
            level, file, line, text = (list(message) + [None] * 4)[:4]
            where = str(file or "")
            if line:
                where = f"{where}:{line}"
            for col, value in enumerate((str(level or ""), where, str(text or ""))):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                self.table.setItem(row, col, item)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keep the file name and line visible
        self.table.setColumnWidth(0, 70)
        self.table.setColumnWidth(1, 360)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSortingEnabled(True)
        self.table.sortItems(0, Qt.SortOrder.AscendingOrder)  # errors before warnings
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy all", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self.copy_all)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.messages = list(messages)

    def text(self) -> str:
        lines = []
        for message in self.messages:
            level, file, line, text = (list(message) + [None] * 4)[:4]
            where = f"{file}:{line}" if line else str(file or "")
            lines.append(f"{level}: {where}: {text}")
        return "\n".join(lines)

    def copy_all(self) -> None:
        from PySide6.QtGui import QGuiApplication

        QGuiApplication.clipboard().setText(self.text())


def show_report(parent: QWidget | None, title: str, summary: str, messages: Sequence[Sequence]) -> None:
    ReportDialog(parent, title, summary, messages).exec()


# -- edit history ------------------------------------------------------------------------------------


def describe_edit(before: dict | None, after: dict | None) -> str:
    """One line for a ``cycle_edits`` row: what changed, in words."""
    if before is None and after is not None:
        return f"created {after['start']:.3f}-{after['end']:.3f} s, {LABELS[after['label']]}"
    if before is None or after is None:
        return ""
    parts = []
    if before.get("label") != after.get("label"):
        parts.append(f"{LABELS[before['label']]} \u2192 {LABELS[after['label']]}")
    if (before.get("start"), before.get("end")) != (after.get("start"), after.get("end")):
        parts.append(f"{before['start']:.3f}-{before['end']:.3f} s \u2192 {after['start']:.3f}-{after['end']:.3f} s")
    if before.get("deleted") != after.get("deleted"):
        parts.append("deleted" if after.get("deleted") else "restored")
    return "; ".join(parts) or "no change"


class HistoryDialog(QDialog):
    """The append-only edit history of a cycle or a recording: when, who, what."""

    def __init__(self, parent: QWidget | None, title: str, rows: Sequence[dict]):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(820, 420)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{len(rows)} change(s), oldest first. The history cannot be edited."))
        self.table = QTableWidget(len(rows), 5, self)
        self.table.setHorizontalHeaderLabels(["When (UTC)", "Who", "Cycle", "Action", "Change"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        for row, entry in enumerate(rows):
            values = (
                str(entry.get("at", "")).replace("T", " ")[:23],
                str(entry.get("author") or ""),
                str(entry.get("cycle_id", "")),
                str(entry.get("action", "")) + (f" ({entry['reason']})" if entry.get("reason") else ""),
                describe_edit(entry.get("before"), entry.get("after")),
            )
            for col, value in enumerate(values):
                self.table.setItem(row, col, QTableWidgetItem(value))
        for col, width in enumerate((190, 90, 60, 110)):
            self.table.setColumnWidth(col, width)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


def show_history(parent: QWidget | None, title: str, rows: Sequence[dict]) -> None:
    HistoryDialog(parent, title, rows).exec()


# -- files --------------------------------------------------------------------------------------
PROJECT_FILTER = "RSC Studio projects (*.rsc);;All files (*)"
AUDIO_FILTER = "Audio files (*.wav *.flac *.ogg *.aiff *.aif);;All files (*)"


def ask_open_project(parent: QWidget | None, start: str = "") -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, "Open project", start, PROJECT_FILTER)
    return path or None


def ask_new_project(parent: QWidget | None, start: str = "") -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, "New project", start, PROJECT_FILTER)
    if not path:
        return None
    if not path.endswith(".rsc"):
        path += ".rsc"
    return path


def ask_directory(parent: QWidget | None, title: str, start: str = "") -> str | None:
    path = QFileDialog.getExistingDirectory(parent, title, start)
    return path or None


def ask_audio_file(parent: QWidget | None, recording_name: str, start: str = "") -> str | None:
    """The relocate-audio dialog: pick the file that holds ``recording_name``'s audio in its new place."""
    path, _ = QFileDialog.getOpenFileName(
        parent, f"Locate audio of {recording_name}", start, AUDIO_FILTER
    )
    return path or None


def ask_labels_csv(parent: QWidget | None, start: str = "") -> str | None:
    path, _ = QFileDialog.getOpenFileName(
        parent, "Labels CSV (optional: Cancel to import without labels)", start, "CSV files (*.csv);;All files (*)"
    )
    return path or None
