"""Is B better than A? Two systems on the same test cycles, as ``rsc compare PROJECT A B`` prints them.

A system is a run, a group's ensemble (``group:NAME``) or a group's seeds one by one (``group:NAME@mean``).
The panel shows :func:`trainer.results.compare_systems`: both systems' Sp, Se, Score and ECE, the paired
bootstrap interval of the Score difference, McNemar's test, the seed-level tests, the metrics by device,
chest location and age group, and the reliability diagram of each side (calibration). The comparison
reads stored outputs of both sides, so it runs on a pool thread with its own project connection.
"""

from __future__ import annotations

from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox, QGridLayout, QLabel, QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from trainer.project import Project
from trainer.results import DIMENSIONS, compare_systems, format_p

from ..workers import Task, start
from .data import CompareData, best_first
from .plots import ChartPanel, legend, style_plot, tidy_legend

SIDES = (("a", "#1f77b4"), ("b", "#d62728"))


def compare_task(path: str, a: str, b: str, split: str, progress=None) -> dict:
    with Project.open(path) as project:
        return compare_systems(project, a, b, split=split)


def num(value, digits: int = 2, sign: bool = False) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def system_choices(groups: list[dict]) -> list[tuple[str, str]]:
    """(text shown, system name) for every ensemble, group mean and finished run."""
    out = []
    for g in groups:
        if g["n"] >= 2:
            out.append((f"{g['group']}++  (ensemble of {g['n']})", f"group:{g['group']}"))
            out.append((f"{g['group']}  (mean of {g['n']} seeds)", f"group:{g['group']}@mean"))
    for g in groups:
        out += [(f"run {run_id}", run_id) for run_id in g["run_ids"]]
    return out


def table(headers: list[str]) -> QTableWidget:
    widget = QTableWidget(0, len(headers))
    widget.setHorizontalHeaderLabels(headers)
    widget.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    widget.verticalHeader().setVisible(False)
    widget.verticalHeader().setDefaultSectionSize(20)
    widget.horizontalHeader().setStretchLastSection(True)
    return widget


def fill(widget: QTableWidget, rows: list[list[str]]) -> None:
    widget.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            if c:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            widget.setItem(r, c, item)
    widget.resizeColumnsToContents()


class SignificancePanel(ChartPanel):
    def __init__(self, data: CompareData, parent=None):
        super().__init__("Significance and calibration", parent)
        self.data = data
        self.result: dict | None = None
        self.task: Task | None = None
        self.a, self.b = QComboBox(), QComboBox()
        for combo in (self.a, self.b):
            combo.setMinimumWidth(260)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Paired bootstrap and McNemar on the same test cycles (rsc compare)")
        self.compare_button.clicked.connect(self.compare)
        self.summary = table(["", "Sp", "Se", "Score", "ECE", "system"])
        self.tests = QLabel("Pick two systems and press Compare.")
        self.tests.setWordWrap(True)
        self.tests.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.dimension = QComboBox()
        for d in DIMENSIONS:
            self.dimension.addItem(d.replace("_", " "), d)
        self.dimension.currentIndexChanged.connect(lambda _: self._fill_breakdown())
        self.breakdown = table(["value", "n", "A Sp", "A Se", "A Score", "B Sp", "B Se", "B Score"])
        self._build()
        self.plot = style_plot(self.canvas.addPlot(), "Reliability diagram (calibration)", left="accuracy",
                               bottom="confidence")
        self.legend = legend(self.plot, offset=(8, 8))  # top left: empty unless a model is underconfident
        self.plot.setXRange(0, 1)
        self.plot.setYRange(0, 1)

    def _build(self) -> None:
        picks = QGridLayout()
        picks.addWidget(QLabel("A"), 0, 0)
        picks.addWidget(self.a, 0, 1)
        picks.addWidget(QLabel("B"), 1, 0)
        picks.addWidget(self.b, 1, 1)
        picks.addWidget(self.compare_button, 0, 2, 2, 1)
        picks.setColumnStretch(1, 1)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(picks)
        column.addWidget(self.summary)
        self.summary.setMaximumHeight(96)
        column.addWidget(self.tests)
        column.addWidget(QLabel("Metrics by"))
        column.addWidget(self.dimension)
        column.addWidget(self.breakdown, 1)
        self.layout().removeWidget(self.canvas)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.canvas)
        splitter.setSizes([560, 380])
        self.layout().addWidget(splitter, 1)

    # -- the systems offered ---------------------------------------------------------------------------
    def set_choices(self) -> None:
        """Offer the systems of the current groups; the picks stay where they still exist."""
        choices = system_choices(self.data.groups)
        for combo in (self.a, self.b):
            current = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            for text, name in choices:
                combo.addItem(text, name)
            index = combo.findData(current)
            combo.setCurrentIndex(index if index >= 0 else -1)
            combo.blockSignals(False)
        if self.a.currentIndex() < 0 or self.b.currentIndex() < 0:
            self._default_picks()

    def _default_picks(self) -> None:
        """A: the best teacher ensemble; B: the best student group distilled from it (else the next group)."""
        groups = sorted((g for g in self.data.groups if g["n"] >= 2), key=best_first)
        if not groups:
            return
        first = next((g for g in groups if g["targets"] == "hard"), groups[0])
        students = [g for g in groups if g["targets"] == "soft"]
        second = next((g for g in students if g["teacher_group"] == first["group"]), None) or next(
            iter(students), next((g for g in groups if g is not first), first))
        self.pick(f"group:{first['group']}", f"group:{second['group']}")

    def pick(self, a: str, b: str) -> None:
        for combo, name in ((self.a, a), (self.b, b)):
            index = combo.findData(name)
            if index >= 0:
                combo.setCurrentIndex(index)

    def reset(self) -> None:
        """Another project: nothing of the last comparison stays, and a late answer is ignored."""
        if self.task is not None:
            self.task.cancel()
        self.task = self.result = None
        self.summary.setRowCount(0)
        self.breakdown.setRowCount(0)
        self.tests.setText("Pick two systems and press Compare.")
        self.invalidate()

    # -- comparing --------------------------------------------------------------------------------------
    def compare(self) -> Task | None:
        a, b = self.a.currentData(), self.b.currentData()
        if not a or not b or self.data.project is None:
            return None
        if self.task is not None:
            self.task.cancel()
        self.tests.setText(f"Comparing {a} with {b} (10,000 bootstrap resamples)...")
        task = self.task = Task(compare_task, str(self.data.project.path), a, b, self.data.split,
                                name="compare systems")
        task.signals.finished.connect(lambda result: self._finished(task, result))
        task.signals.failed.connect(lambda exc, tb: self._failed(task, exc))
        start(task)
        return task

    def _failed(self, task: Task, exc: BaseException) -> None:
        if task is self.task:
            self.task = None
            self.tests.setText(f"<span style='color:#c62828'>{escape(str(exc))}</span>")

    def _finished(self, task: Task, result: dict) -> None:
        if task is not self.task:
            return
        self.task = None
        self.show_result(result)

    def show_result(self, result: dict) -> None:
        self.result = result
        a, b, d = result["a"], result["b"], result["difference"]
        fill(self.summary, [
            ["A", num(a["sp"]), num(a["se"]), num(a["score"]), num(a["ece"], 4), a["name"]],
            ["B", num(b["sp"]), num(b["se"]), num(b["score"]), num(b["ece"], 4), b["name"]],
            ["B - A", num(d["sp"], sign=True), num(d["se"], sign=True), num(d["score"], sign=True), "", ""],
        ])
        self.tests.setText("<br>".join(self.test_lines(result)))
        self._fill_breakdown()
        self.invalidate()

    @staticmethod
    def test_lines(result: dict) -> list[str]:
        """The tests as rich text lines (values escaped: a p-value below resolution reads "< 0.0002")."""
        boot, m, seeds = result["bootstrap"], result["mcnemar"], result["seeds"]

        def p(value, resamples=None) -> str:
            return escape(format_p(value, resamples))

        lines = [f"<b>Score B - A: {num(boot['difference'], sign=True)}</b>, {100 * boot['level']:.0f}% interval "
                 f"<b>[{num(boot['low'], sign=True)}, {num(boot['high'], sign=True)}]</b>, p = "
                 f"{p(boot['p'], boot['resamples'])} (paired bootstrap over {result['n_cycles']} cycles, "
                 f"{boot['resamples']} resamples)"]
        if m:
            lines.append(f"McNemar ({m['method']}): only A right on {m['a_only']} cycles, only B right on "
                         f"{m['b_only']}; <b>p = {p(m['p'])}</b>")
        if seeds:
            w, perm = seeds["welch"], seeds["permutation"]
            a, b = seeds["a"], seeds["b"]
            lines.append(f"Across seeds: A {a['n']} runs {num(a['mean'])} ± {num(a['std'])}, B {b['n']} runs "
                         f"{num(b['mean'])} ± {num(b['std'])}; Welch p = <b>{p(w['p'])}</b>, permutation p = "
                         f"{p(perm['p'])}")
        lines.append(f"Calibration: ECE A {num(result['a']['ece'], 4)}, B {num(result['b']['ece'], 4)} (expected "
                     "calibration error of the top probability; the diagram plots accuracy against confidence per "
                     "bin, marker size the cycles in it, the dashed line perfect calibration)")
        lines += [f"<span style='color:#616161'>note: {escape(note)}</span>" for note in result["notes"]]
        return lines

    def _fill_breakdown(self) -> None:
        if self.result is None:
            return
        rows = self.result["breakdown"][self.dimension.currentData()]
        fill(self.breakdown, [[str(r["value"]), str(r["n"]), num(r["a"]["sp"]), num(r["a"]["se"]), num(r["a"]["score"]),
                               num(r["b"]["sp"]), num(r["b"]["se"]), num(r["b"]["score"])] for r in rows])

    # -- the reliability diagram -------------------------------------------------------------------------
    def draw(self) -> None:
        self.plot.clear()
        self.legend.clear()
        self.plot.plot([0, 1], [0, 1], pen=pg.mkPen("#9e9e9e", width=1, style=Qt.PenStyle.DashLine))
        if self.result is None:
            self.note.setText("")
            tidy_legend(self.legend)
            return
        notes = []
        for side, hue in SIDES:
            summary = self.result[side]
            reliability = summary["reliability"]
            if reliability is None:
                notes.append(f"{side.upper()} is a group mean: its ECE is the mean of its runs' "
                             f"({num(summary['ece'], 4)})")
                continue
            bins = [b for b in reliability["bins"] if b["count"]]
            x = np.array([b["confidence"] for b in bins])
            y = np.array([b["accuracy"] for b in bins])
            sizes = np.array([b["count"] for b in bins], dtype=np.float64)
            self.plot.plot(x, y, pen=pg.mkPen(hue, width=2), symbol="o", symbolBrush=hue, symbolPen=None,
                           symbolSize=5 + 10 * np.sqrt(sizes / sizes.max()),
                           name=f"{side.upper()} {summary['name']}: ECE {summary['ece']:.3f}")
        self.note.setText("  ".join(notes))
        tidy_legend(self.legend)
        self.plot.setXRange(0, 1)
        self.plot.setYRange(0, 1)
