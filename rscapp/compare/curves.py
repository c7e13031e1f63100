"""Training curves of the selected runs (TensorBoard, Weights & Biases): one thin line per run, and for a
group of seeds its mean with a band of one standard deviation either side.

The epochs come from ``trainer.runs.run_epochs`` (read once per run and kept until the run changes).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox

from trainer.results.views import spread

from .data import CompareData
from .plots import ChartPanel, color, legend, style_plot, tidy_legend, with_alpha

# What run_epochs rows hold, and how to call it on the axis.
CURVE_METRICS = (("score", "Score (test, %)"), ("sp", "Sp (test, %)"), ("se", "Se (test, %)"),
                 ("val_score", "Score (validation, %)"), ("loss", "training loss"))


class TrainingCurves(ChartPanel):
    def __init__(self, data: CompareData, parent=None):
        super().__init__("Training curves", parent)
        self.data = data
        self.series: list[tuple[str, list[str]]] = []
        self.metric = QComboBox()
        for key, text in CURVE_METRICS:
            self.metric.addItem(text, key)
        self.metric.currentIndexChanged.connect(lambda _: self.invalidate())
        self.controls.addWidget(self.metric)
        self.plot = style_plot(self.canvas.addPlot(), bottom="epoch")
        # Horizontal lines only: vertical grid lines double what a redraw of this often-redrawn chart costs.
        self.plot.showGrid(x=False, y=True, alpha=0.15)
        self.legend = legend(self.plot, offset=(-8, -8))

    def set_series(self, series: list[tuple[str, list[str]]]) -> None:
        """(label, run ids) per selected run, group or ensemble; several runs are drawn with their spread."""
        self.series = series
        self.invalidate()

    def draw(self) -> None:
        key = self.metric.currentData()
        self.plot.clear()
        self.legend.clear()
        self.plot.setLabel("left", self.metric.currentText(), color="#212121")
        drawn = 0
        for i, (label, run_ids) in enumerate(self.series):
            curves = [self._values(run_id, key) for run_id in run_ids]
            curves = [c for c in curves if c[0].size]
            if not curves:
                continue
            drawn += 1
            hue = color(i)
            if len(curves) == 1:
                x, y = curves[0]
                self.plot.addItem(pg.PlotCurveItem(x, y, pen=pg.mkPen(hue, width=2), name=label, connect="finite"))
                continue
            # All of a group's runs as one item (NaN between runs): ten seeds cost one item to draw, not ten.
            x = np.concatenate([np.append(cx, np.nan) for cx, _ in curves])
            y = np.concatenate([np.append(cy, np.nan) for _, cy in curves])
            self.plot.addItem(pg.PlotCurveItem(x, y, pen=pg.mkPen(with_alpha(hue, 70), width=1), connect="finite"))
            mean, std, count = spread([cy.tolist() for _, cy in curves])
            steps = np.arange(1, mean.size + 1, dtype=np.float64)
            ok = count > 0
            low = pg.PlotCurveItem(steps[ok], (mean - std)[ok], pen=pg.mkPen(None))
            high = pg.PlotCurveItem(steps[ok], (mean + std)[ok], pen=pg.mkPen(None))
            self.plot.addItem(low)
            self.plot.addItem(high)
            self.plot.addItem(pg.FillBetweenItem(low, high, brush=pg.mkBrush(with_alpha(hue, 45))))
            self.plot.addItem(pg.PlotCurveItem(steps[ok], mean[ok], pen=pg.mkPen(hue, width=2.5),
                                               name=f"{label}: mean ± std of {len(curves)} runs"))
        if not self.series:
            self.note.setText("Select runs, groups or ensembles in the table to see how they trained.")
        elif not drawn:
            self.note.setText("The selected runs have no finished epochs yet.")
        else:
            self.note.setText("")
        self.plot.enableAutoRange()
        tidy_legend(self.legend)

    def _values(self, run_id: str, key: str) -> tuple[np.ndarray, np.ndarray]:
        epochs = self.data.epochs(run_id)
        x = np.array([e.get("epoch", i + 1) for i, e in enumerate(epochs)], dtype=np.float64)
        y = np.array([np.nan if e.get(key) is None else e[key] for e in epochs], dtype=np.float64)
        return x, y
