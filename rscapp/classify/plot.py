"""The result plot: the recording's spectrogram with each cycle as a band coloured by its label, and under it
the class probabilities of each cycle stacked to one, with the confidence threshold as a dashed line.

The spectrogram is the Listen view's (:mod:`rscapp.listen.spectrogram`: the same computation, presets and
colour maps), computed on a pool thread. Colours are the app's label colours; ``uncertain`` is grey. A
cycle whose confident prediction differs from its annotation gets a thick orange frame.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor

from trainer.audio import read_audio
from trainer.infer.classify import UNCERTAIN

from ..listen.spectrogram import BUILTIN_PRESETS, compute_spectrogram, lookup_table
from .table import label_colour

SETTINGS = BUILTIN_PRESETS["Lung sounds"]
DISAGREE_PEN = pg.mkPen("#ff9800", width=2.5)


def spectrogram_of(path: str, progress=None):
    """Read a recording and compute its spectrogram (on a pool thread)."""
    wave, rate = read_audio(path)
    return compute_spectrogram(wave, rate, SETTINGS, progress=progress)


def tooltip(index: int, cycle) -> str:
    ranked = sorted(cycle.probabilities.items(), key=lambda kv: -kv[1])
    lines = [f"Cycle {index + 1}: {cycle.start:.3f}-{cycle.end:.3f} s ({cycle.source})",
             f"label {cycle.label} (predicted {cycle.predicted}, confidence {cycle.confidence:.3f})"]
    lines += [f"  p({name}) = {p:.3f}" for name, p in ranked]
    if cycle.annotated is not None:
        lines.append(f"annotated {cycle.annotated}" + ("  - DISAGREES" if cycle.disagrees else ""))
    return "\n".join(lines)


class CycleBand(pg.LinearRegionItem):
    """One classified cycle; fixed in place, a click selects it."""

    def __init__(self, plot: "ResultPlot", index: int, cycle, selected: bool):
        colour = QColor(label_colour(cycle.label))
        # Faint: the band says where the cycle is; its label sits in the box at the top, so the
        # spectrogram under it stays readable.
        colour.setAlpha(80 if selected else 22)
        super().__init__(values=(cycle.start, cycle.end), movable=False, brush=pg.mkBrush(colour))
        edge = DISAGREE_PEN if cycle.disagrees else pg.mkPen("#ffffff" if selected else label_colour(cycle.label),
                                                               width=3 if selected else 1.5)
        for line in self.lines:
            line.setPen(edge)
            line.setHoverPen(edge)
        self.plot, self.index = plot, index
        self.setToolTip(tooltip(index, cycle))
        self.setZValue(10 if selected else 5)

    def mouseClickEvent(self, ev):
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.plot.cycleClicked.emit(self.index)
        else:
            ev.ignore()


class ResultPlot(pg.GraphicsLayoutWidget):
    cycleClicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("#1e1e1e")
        self.spec_plot = self.addPlot(row=0, col=0)
        self.prob_plot = self.addPlot(row=1, col=0)
        self.ci.layout.setRowStretchFactor(0, 3)
        self.ci.layout.setRowStretchFactor(1, 1)
        self.prob_plot.setXLink(self.spec_plot)
        for plot in (self.spec_plot, self.prob_plot):
            plot.getAxis("left").setWidth(52)  # equal widths keep the two time axes in line
        self.spec_plot.setLabel("left", "Hz")
        self.spec_plot.hideButtons()
        self.spec_plot.setMouseEnabled(x=True, y=False)
        self.prob_plot.setLabel("left", "p")
        self.prob_plot.setLabel("bottom", "time (s)")
        self.spec_plot.setXRange(0.0, 10.0, padding=0)
        self.spec_plot.setYRange(0.0, SETTINGS.max_freq, padding=0)
        self.prob_plot.setYRange(0, 1, padding=0.02)
        self.prob_plot.setMouseEnabled(x=True, y=False)
        self.prob_plot.hideButtons()
        self.image = pg.ImageItem(axisOrder="col-major")  # (time, frequency), as Listen draws it
        self.image.setLookupTable(lookup_table(SETTINGS.colormap))
        self.spec_plot.addItem(self.image)
        self.threshold_line = pg.InfiniteLine(angle=0, pen=pg.mkPen("#ffffff", width=1.5, style=Qt.PenStyle.DashLine))
        self.prob_plot.addItem(self.threshold_line)
        self.bands: list[CycleBand] = []
        self.texts: list[pg.TextItem] = []
        self.bars: list[pg.BarGraphItem] = []
        self.result = None
        self.selected = -1
        self.spectrogram = None
        self.hint = pg.TextItem("Open a model, add recordings, then Classify", color="#9e9e9e", anchor=(0.5, 0.5))
        self.hint.setPos(5.0, SETTINGS.max_freq / 2)
        self.spec_plot.addItem(self.hint)

    def set_spectrogram(self, spec) -> None:
        self.spectrogram = spec
        if spec is None:
            self.image.clear()
            return
        self.image.setImage(spec.db, autoLevels=False, levels=spec.levels(SETTINGS.dynamic_range))
        self.image.setRect(QRectF(spec.t0 - spec.hop / 2, 0.0, spec.hop * spec.db.shape[0], spec.f_max))
        self.spec_plot.setYRange(0, spec.f_max, padding=0)

    def show_result(self, result, selected: int = -1) -> None:
        """Draw a result's cycles (None clears them); call again after a relabel, it costs milliseconds."""
        self.result, self.selected = result, selected
        for item in self.bands + self.texts:
            self.spec_plot.removeItem(item)
        for item in self.bars:
            self.prob_plot.removeItem(item)
        self.bands, self.texts, self.bars = [], [], []
        self.hint.setVisible(result is None)
        if result is None:
            return
        top = self.spectrogram.f_max if self.spectrogram is not None else 4000.0
        for index, cycle in enumerate(result.cycles):
            band = CycleBand(self, index, cycle, index == selected)
            self.spec_plot.addItem(band)
            self.bands.append(band)
            text = pg.TextItem(cycle.label if cycle.label != UNCERTAIN else "?", color="#ffffff",
                               border=DISAGREE_PEN if cycle.disagrees else None,
                               anchor=(0.5, 0.0), fill=pg.mkBrush(label_colour(cycle.label)))
            text.setPos((cycle.start + cycle.end) / 2.0, top)
            text.setToolTip(tooltip(index, cycle))
            self.spec_plot.addItem(text)
            self.texts.append(text)
        self._draw_probabilities(result)
        self.threshold_line.setValue(result.threshold)
        self.spec_plot.setXRange(0.0, max(result.duration, 0.1), padding=0.01)

    def _draw_probabilities(self, result) -> None:
        if not result.cycles:
            return
        starts = np.array([c.start for c in result.cycles])
        widths = np.array([c.end - c.start for c in result.cycles])
        below = np.zeros(len(starts))
        for name in result.cycles[0].probabilities:
            heights = np.array([c.probabilities[name] for c in result.cycles])
            bars = pg.BarGraphItem(x0=starts, width=widths, y0=below, height=heights,
                                   brush=pg.mkBrush(label_colour(name)), pen=pg.mkPen("#1e1e1e", width=1))
            self.prob_plot.addItem(bars)
            self.bars.append(bars)
            below = below + heights

    def select(self, index: int) -> None:
        if index != self.selected and self.result is not None:
            self.show_result(self.result, index)
