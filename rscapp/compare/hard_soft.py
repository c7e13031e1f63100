"""Sp, Se and Score of hard-label against soft-label models, per architecture (paper Table 2).

Each student group is paired with the hard-label group of its architecture that the report compares it
with (``trainer.results.collect_hard_vs_soft``): one row per pair, bars the means over seeds, whiskers one
standard deviation. Bars run sideways so that the rows' names stay readable however many there are.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from trainer.results import collect_hard_vs_soft

from .data import CompareData
from .plots import ChartPanel, style_plot, tidy_legend

HARD, SOFT = "#9e9e9e", "#1f77b4"
PANELS = (("sp", "Specificity (Sp, %)"), ("se", "Sensitivity (Se, %)"), ("score", "Score (%)"))
HEIGHT = 0.38


def row_label(row: dict) -> str:
    return f"{row['arch']} {row['mode']} k={row['k']}"


class HardSoft(ChartPanel):
    def __init__(self, data: CompareData, parent=None):
        super().__init__("Hard against soft labels per architecture (Table 2)", parent)
        self.data = data
        self.rows: list[dict] = []
        self.plots = {}
        for col, (key, title) in enumerate(PANELS):
            plot = self.plots[key] = style_plot(self.canvas.addPlot(row=0, col=col), title)
            plot.invertY(True)  # the first pair on top, as in a table
            plot.setMouseEnabled(x=True, y=False)
            if col:
                plot.setYLink(self.plots["sp"])
        self.canvas.ci.layout.setColumnStretchFactor(0, 3)  # the first plot also carries the rows' names
        for col in (1, 2):
            self.canvas.ci.layout.setColumnStretchFactor(col, 2)
        # Under the plots, not on them: bars fill every corner.
        self.legend = pg.LegendItem(colCount=2, labelTextColor="#212121")
        self.canvas.addItem(self.legend, row=1, col=0, colspan=3)

    def draw(self) -> None:
        self.rows = collect_hard_vs_soft(self.data.groups)
        self.legend.clear()
        ticks = [(i, row_label(r)) for i, r in enumerate(self.rows)]
        for col, (key, plot) in enumerate(self.plots.items()):
            plot.clear()
            for side, offset, brush in (("hard", -HEIGHT / 2, HARD), ("soft", HEIGHT / 2, SOFT)):
                means, stds = self._values(key, side)
                y = np.arange(len(self.rows), dtype=np.float64) + offset
                ok = np.isfinite(means)
                if not ok.any():
                    continue
                bars = pg.BarGraphItem(x0=0, y=y[ok], width=means[ok], height=HEIGHT * 0.92, brush=brush,
                                       pen=pg.mkPen(None))
                plot.addItem(bars)
                plot.addItem(pg.ErrorBarItem(x=means[ok], y=y[ok], width=2 * stds[ok], beam=0.12,
                                             pen=pg.mkPen("#212121", width=1)))
                if key == "score":
                    self.legend.addItem(bars, "hard labels" if side == "hard" else "soft labels (students)")
            plot.getAxis("left").setTicks([ticks if col == 0 else [(i, "") for i, _ in ticks]])
            plot.setYRange(-0.6, max(len(self.rows), 1) - 0.4, padding=0)
            plot.enableAutoRange(axis="x")
            plot.setLimits(xMin=0)
        tidy_legend(self.legend)
        missing = [r["soft_group"] for r in self.rows if not r["hard"]]
        if not self.rows:
            self.note.setText("No student groups yet: distil one from a teacher group to compare it with hard labels.")
        elif missing:
            self.note.setText(f"No hard-label group of the same architecture for: {', '.join(missing)}")
        else:
            differ = [r["soft_group"] for r in self.rows if not r["same_settings"]]
            self.note.setText(f"Training settings differ from the hard-label group for: {', '.join(differ)}"
                              if differ else "Each pair shares its training settings; only the targets differ.")

    def _values(self, key: str, side: str) -> tuple[np.ndarray, np.ndarray]:
        means, stds = [], []
        for row in self.rows:
            stat = (row[side] or {}).get(key) or {}
            mean, std = stat.get("mean"), stat.get("std")
            means.append(np.nan if mean is None else mean)
            stds.append(0.0 if std is None else std)
        return np.array(means, dtype=np.float64), np.array(stds, dtype=np.float64)
