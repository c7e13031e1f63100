"""Score against the number of teachers (paper Figures 2 and 3).

Left: each teacher group's ensemble of its first k runs by seed, for every k (from the stored outputs).
Right: students distilled from k teachers, mean ± std over seeds, the hard-label students at k = 0, with
the ensemble of the same teachers dashed beside them (what ``rsc sweep`` tabulates).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox

from trainer.results.ensembles import EnsembleOutputs
from trainer.results.views import ensemble_curve_of, student_curves

from .data import CompareData
from .plots import ChartPanel, color, legend, style_plot, tidy_legend

SYMBOLS = ("o", "s", "t", "d", "+", "x")
METRIC_NAMES = {"score": "Score (%)", "sp": "Sp (%)", "se": "Se (%)"}


class TeacherCount(ChartPanel):
    def __init__(self, data: CompareData, parent=None):
        super().__init__("Score against the number of teachers", parent)
        self.data = data
        self.metric = QComboBox()
        for key, text in METRIC_NAMES.items():
            self.metric.addItem(text, key)
        self.metric.currentIndexChanged.connect(lambda _: self.invalidate())
        self.controls.addWidget(self.metric)
        self.teachers = style_plot(self.canvas.addPlot(), "Teacher ensembles (Figure 2)",
                                   bottom="teachers in the ensemble (k)")
        self.students = style_plot(self.canvas.addPlot(), "Distilled students (Figure 3)",
                                   bottom="teachers distilled from (k)")
        self.teachers_legend = legend(self.teachers)
        self.students_legend = legend(self.students)
        self.curves: dict[str, dict] = {}  # teacher group -> its ensemble curve, as drawn
        self.families: list[dict] = []

    def draw(self) -> None:
        key = self.metric.currentData()
        for plot, item in ((self.teachers, self.teachers_legend), (self.students, self.students_legend)):
            plot.clear()
            item.clear()
            plot.setLabel("left", METRIC_NAMES[key], color="#212121")
        self.curves = {}
        groups = [g for g in self.data.groups if g["targets"] == "hard" and g["kind"] == "teacher" and g["n"] >= 2]
        waiting = 0
        for i, group in enumerate(groups):
            outputs = self.data.outputs(group["group"])
            if not isinstance(outputs, EnsembleOutputs):
                waiting += outputs is None
                continue
            curve = self.curves[group["group"]] = ensemble_curve_of(outputs)
            self.teachers.plot(curve["k"], curve[key], pen=pg.mkPen(color(i), width=2), symbol=SYMBOLS[i % 6],
                               symbolSize=6, symbolBrush=color(i), symbolPen=None,
                               name=f"{group['group']} ({group['arch']})")
        hues = {g["group"]: color(i) for i, g in enumerate(groups)}
        families = student_curves(self.data.groups)
        # The figure is about how students change with k: families with one k each are compared in "Hard vs soft".
        sweeps = [f for f in families if len({p["k"] for p in f["points"] if p["k"] >= 1}) >= 2]
        self.families = sweeps or families
        for i, family in enumerate(self.families):
            self._student_family(i, family, key, hues)
        notes = []
        if sweeps and len(families) > len(sweeps):
            notes.append(f"Right: the {len(sweeps)} teacher-count sweep(s); {len(families) - len(sweeps)} student "
                         "group(s) with a single k are in Hard vs soft.")
        if not groups:
            notes.append("No teacher group has two finished runs yet.")
        if waiting:
            notes.append(f"Reading the stored outputs of {waiting} teacher group(s)...")
        if not self.families:
            notes.append("No distilled students yet (Train > Distil, or rsc sweep).")
        self.note.setText("  ".join(notes))
        largest = max([max(c["k"]) for c in self.curves.values()] + [p["k"] for f in self.families for p in f["points"]]
                      + [1])
        for plot in (self.teachers, self.students):
            plot.getAxis("bottom").setTickSpacing(*((1, 1) if largest <= 12 else (5, 1)))  # k is a count
            plot.enableAutoRange()
        tidy_legend(self.teachers_legend)
        tidy_legend(self.students_legend)

    def _student_family(self, i: int, family: dict, key: str, hues: dict) -> None:
        points = family["points"]
        ks = np.array([p["k"] for p in points], dtype=np.float64)
        mean = np.array([np.nan if p[key][0] is None else p[key][0] for p in points], dtype=np.float64)
        std = np.array([0.0 if p[key][1] is None else p[key][1] for p in points], dtype=np.float64)
        hue = color(i + 3)
        self.students.addItem(pg.ErrorBarItem(x=ks, y=mean, height=2 * std, beam=0.25, pen=pg.mkPen(hue, width=1)))
        self.students.plot(ks, mean, pen=pg.mkPen(hue, width=2), symbol=SYMBOLS[i % 6], symbolSize=7,
                           symbolBrush=hue, symbolPen=None, name=family["label"])
        teacher_curve = self.curves.get(family["teacher_group"])
        if teacher_curve and not any(c["teacher_group"] == family["teacher_group"] for c in self.families[:i]):
            # Once per teacher group: the bar the students are measured against.
            self.students.plot(teacher_curve["k"], teacher_curve[key],
                               pen=pg.mkPen(hues.get(family["teacher_group"], "#757575"), width=1.5,
                                            style=pg.QtCore.Qt.PenStyle.DashLine),
                               name=f"{family['teacher_group']} ensemble")
