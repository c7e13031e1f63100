"""The Compare view: runs grouped by seed, ensembles against distilled students, and their significance.

Left, the runs table (groups with mean ± std over seeds, their runs, their ensembles) and the settings
that differ between the selected runs; right, the charts and panels: training curves, the confusion
matrix whose cells list their cycles, score against the number of teachers, hard against soft labels,
the significance of a difference, and the label review. The view listens to the
:class:`~rscapp.model.ProjectModel` and recomputes lazily: while it is hidden a run that finishes or a
relabel only marks it stale. Every number comes from ``trainer.results`` (see :mod:`.data`); the CSV and
LaTeX exports are ``trainer.results.render`` of the same report ``rsc report`` builds.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QSplitter, QTabWidget, QVBoxLayout, QWidget

from trainer.files import write_text_atomic
from trainer.results import render_csv, render_latex

from ..model import ProjectModel
from .confusion import ConfusionPanel
from .curves import TrainingCurves
from .data import CompareData, best_first
from .hard_soft import HardSoft
from .label_review import LabelReview
from .runs_table import RunsTable
from .settings_diff import SettingsDiff
from .significance_panel import SignificancePanel
from .teacher_count import TeacherCount

EXPORTS = {"csv": ("CSV", render_csv), "tex": ("LaTeX", render_latex)}


class CompareView(QWidget):
    openCycle = Signal(int, int)  # recording id, cycle id: the host opens it in Listen
    statusMessage = Signal(str)

    def __init__(self, model: ProjectModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.data = CompareData(model, parent=self)
        self.status = QLabel("")
        self.runs_table = RunsTable(self.data)
        self.settings = SettingsDiff()
        self.curves = TrainingCurves(self.data)
        self.confusion = ConfusionPanel(self.data)
        self.teacher_count = TeacherCount(self.data)
        self.hard_soft = HardSoft(self.data)
        self.significance = SignificancePanel(self.data)
        self.label_review = LabelReview(self.data)
        self.tabs = QTabWidget()
        for panel, title in ((self.curves, "Training curves"), (self.confusion, "Confusion matrix"),
                             (self.teacher_count, "Score vs teachers"), (self.hard_soft, "Hard vs soft"),
                             (self.significance, "Significance"), (self.label_review, "Label review")):
            self.tabs.addTab(panel, title)
        self.export_buttons = {fmt: QPushButton(f"Export {name}...") for fmt, (name, _) in EXPORTS.items()}
        self._refresh_pending = False
        self._build_layout()
        self._connect()
        self._project_changed(model.project)

    def _build_layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        for fmt, button in self.export_buttons.items():
            button.setToolTip(f"The report's tables as {EXPORTS[fmt][0]}: the same numbers `rsc report` prints")
            button.clicked.connect(lambda _=False, f=fmt: self._ask_export(f))
            top.addWidget(button)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.runs_table)
        left.addWidget(self.settings)
        left.setSizes([620, 220])
        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(left)
        main.addWidget(self.tabs)
        main.setSizes([770, 830])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(main, 1)

    def _connect(self) -> None:
        model, data = self.model, self.data
        model.projectChanged.connect(self._project_changed)
        model.runsChanged.connect(self._runs_changed)
        model.recordingsChanged.connect(lambda ids: self._schedule())
        model.cyclesChanged.connect(self._cycles_changed)
        data.groupsChanged.connect(self._groups_changed)
        data.outputsChanged.connect(self._outputs_changed)
        data.loading.connect(self._loading)
        self.runs_table.selectionChanged.connect(self.show_selection)
        self.confusion.openCycle.connect(self.openCycle)
        self.label_review.openCycle.connect(self.openCycle)

    # -- staying up to date, lazily ------------------------------------------------------------------
    def _project_changed(self, project) -> None:
        self._first_selection = True
        self.significance.reset()
        self.label_review.reset()
        self.status.setText("" if project is not None else "No project open.")
        for button in self.export_buttons.values():
            button.setEnabled(False)  # until the project's groups are in
        self._schedule()

    def _runs_changed(self, run_ids) -> None:
        shown = {run_id for _, ids in self.curves.series for run_id in ids}
        if shown & set(run_ids):
            self.curves.invalidate()  # a selected run that is training: its new epochs
        self._schedule()

    def _cycles_changed(self, cycle_ids, recording_ids) -> None:
        self.label_review.labels_changed(cycle_ids)
        self._schedule()

    def _schedule(self) -> None:
        """Refresh soon if on screen (several signals in a row: one refresh); otherwise when shown."""
        if self.isVisible() and not self._refresh_pending:
            self._refresh_pending = True
            QTimer.singleShot(0, self.ensure_current)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.ensure_current()

    def ensure_current(self) -> None:
        """Bring everything up to date now (the first paint follows); cheap when nothing is stale."""
        self._refresh_pending = False
        if self.model.project is None:
            self.runs_table.rebuild()
            self._panels_changed()
            return
        if self.data.stale:
            self.data.refresh()

    def _groups_changed(self) -> None:
        runs = sum(g["n"] + len(g["not_finished"]) for g in self.data.groups)
        self.status.setText(f"{runs} runs in {len(self.data.groups)} groups; scores on the {self.data.split} split"
                            if runs else "No training runs yet: train a teacher ensemble in the Train view "
                            "(or with rsc train), then compare it here.")
        for button in self.export_buttons.values():
            button.setEnabled(bool(self.data.groups))  # `rsc report` too has nothing to say without runs
        self._panels_changed()
        if self._first_selection and self.data.groups:
            self._first_selection = False
            self.runs_table.select_rows(self._default_selection())

    def _panels_changed(self) -> None:
        self.significance.set_choices()
        self.label_review.set_choices()
        self.teacher_count.invalidate()
        self.hard_soft.invalidate()

    def _default_selection(self) -> list[tuple]:
        """The teacher group with the most finished runs: its curves and its ensemble's matrix on screen."""
        groups = sorted((g for g in self.data.groups if g["n"]),
                        key=lambda g: (g["targets"] != "hard", *best_first(g)))
        return [("group", groups[0]["group"])] if groups else []

    def _outputs_changed(self, names) -> None:
        self.teacher_count.invalidate()
        if any(self._group_of(key) in names for key in self.runs_table.selected_keys()[:1]):
            self._show_system(self.runs_table.selected_keys())

    def _loading(self, done: int, waiting: int) -> None:
        base = self.status.text().split("  ·  ")[0]
        self.status.setText(base + (f"  ·  reading stored outputs for the ensembles: {done} of {done + waiting} runs"
                                    if waiting else ""))

    # -- the selection -------------------------------------------------------------------------------
    def _group_of(self, key: tuple) -> str | None:
        if key[0] == "run":
            run = self.data.runs.get(key[1])
            return (run.group or "(no group)") if run else None
        return key[1]

    def _runs_of(self, key: tuple) -> list[str]:
        if key[0] == "run":
            return [key[1]]
        group = self.data.group(key[1])
        if group is None:
            return []
        return list(group["run_ids"][: key[2]] if key[0] == "ensemble" else group["run_ids"])

    def show_selection(self, keys: list[tuple]) -> None:
        """Redraw what depends on the selection: settings, curves, the matrix (only the panel on screen draws)."""
        self.data.priority = [g for g in (self._group_of(k) for k in keys) if g]
        specs = {}
        for key in keys:
            for run_id in self._runs_of(key):
                if run_id in self.data.runs:
                    specs.setdefault(run_id, self.data.runs[run_id].spec)
        self.settings.show_runs(specs)
        self.curves.set_series([(self._label(k), self._runs_of(k)) for k in keys])
        self._show_system(keys)
        systems = [self._system_name(k) for k in keys[:2]]
        if len(systems) == 2 and all(systems):
            self.significance.pick(*systems)

    def _show_system(self, keys: list[tuple]) -> None:
        if keys:
            self.confusion.set_system(*self.data.system(keys[0]))
        else:
            self.confusion.set_system("", None)

    @staticmethod
    def _label(key: tuple) -> str:
        if key[0] == "ensemble":
            return f"{key[1]} (first {key[2]})"
        return key[1]

    def _system_name(self, key: tuple) -> str | None:
        if key[0] == "run":
            return key[1]
        if key[0] == "ensemble":
            group = self.data.group(key[1])
            return f"group:{key[1]}" if group and key[2] == group["n"] else f"group:{key[1]}@{key[2]}"
        return f"group:{key[1]}"

    # -- exports -------------------------------------------------------------------------------------
    def export(self, fmt: str, path: str | Path) -> Path:
        """Write the report's tables as ``csv`` or ``tex`` (LaTeX); every group's outputs are read first."""
        text = EXPORTS[fmt][1](self.data.report())
        written = write_text_atomic(path, text)
        self.statusMessage.emit(f"Saved the report as {EXPORTS[fmt][0]} to {written}")
        return written

    def _ask_export(self, fmt: str) -> None:
        if self.model.project is None:
            return
        name, _ = EXPORTS[fmt]
        start = str(self.model.project.path.with_suffix(f".report.{fmt}"))
        path, _ = QFileDialog.getSaveFileName(self, f"Export the report as {name}", start, f"{name} (*.{fmt})")
        if path:
            self.export(fmt, path)
