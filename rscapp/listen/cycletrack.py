"""The cycle track: one coloured region per breathing cycle, under the spectrogram, on the same time axis.

A region is selected by a click; its two edges are dragged to move a boundary. An edge cannot pass
its neighbour's boundary (the line's bounds are the gap it sits in) and snaps to that boundary, or to
the playhead, when dropped within a few pixels, so closing a gap takes one rough drag. The body of a
region does not move: shifting a whole cycle is a rare edit, and an accidental one would be easy to
miss. The track never writes to the project itself: it emits what the user asked for and the view
turns that into an undoable command.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, QRectF, QTimer, Signal
from PySide6.QtGui import QColor, QFont

from trainer.vocab import LABELS

from ..style import qcolor
from .timeaxis import TimeViewBox

MIN_CYCLE = 0.02  # seconds; an edge never comes closer than this to the other edge
SNAP_PIXELS = 6


class CycleRegion(pg.LinearRegionItem):
    """A cycle: edges draggable, body clickable (selects), never dragged as a whole."""

    def __init__(self, track: "CycleTrack", cycle: dict, bounds: tuple[float, float], selected: bool):
        super().__init__(values=(cycle["start"], cycle["end"]), hoverPen=pg.mkPen("#ffeb3b", width=3),
                         movable=True, swapMode="block")
        self.track = track
        left, right = self.lines
        left.setToolTip("Drag to move the cycle's start (snaps to the neighbour and the playhead)")
        right.setToolTip("Drag to move the cycle's end (snaps to the neighbour and the playhead)")
        for line in self.lines:
            line.sigPositionChangeFinished.connect(self._snap_and_finish)
        self._shown = None
        self.show_cycle(cycle, bounds, selected)

    def show_cycle(self, cycle: dict, bounds: tuple[float, float], selected: bool) -> None:
        """Draw this cycle (its span, label and selection) with the neighbours' boundaries as edge limits."""
        shown = (cycle["id"], cycle["start"], cycle["end"], cycle["label"], cycle.get("origin"), bounds, selected)
        if shown == self._shown:
            self.cycle = cycle
            return
        self._shown = shown
        label = int(cycle["label"])
        self.setBrush(pg.mkBrush(qcolor(label, 200 if selected else 110)))
        self.setHoverBrush(pg.mkBrush(qcolor(label, 230 if selected else 150)))
        edge = pg.mkPen(QColor("#ffffff") if selected else qcolor(label), width=3 if selected else 1.5)
        for line in self.lines:
            line.setPen(edge)
        self.cycle_id = int(cycle["id"])
        self.cycle = cycle
        self._original = (float(cycle["start"]), float(cycle["end"]))
        left, right = self.lines
        # min/max: a file may hold cycles that already overlap; the bounds must not move them on their own.
        left.setBounds((min(bounds[0], cycle["start"]), cycle["end"] - MIN_CYCLE))
        right.setBounds((cycle["start"] + MIN_CYCLE, max(bounds[1], cycle["end"])))
        if self.getRegion() != self._original:
            self.setRegion(self._original)
        self.setToolTip(
            f"Cycle {self.cycle_id}: {LABELS[label]}, {cycle['start']:.3f}-{cycle['end']:.3f} s"
            f" ({cycle.get('origin', '')})\nClick to select; keys 1-4 relabel; Delete removes"
        )
        self._neighbours = bounds
        self.setZValue(10 if selected else 5)
        self.update()

    def paint(self, painter, *args):
        super().paint(painter, *args)
        # The label is drawn here in device pixels: a TextItem per cycle costs more to build than the track.
        view = self.track.plot.getViewBox()
        (x0, x1), _ = view.viewRange()
        start, end = self.getRegion()
        centre = (max(start, x0) + min(end, x1)) / 2.0
        where = painter.transform().map(QPointF(centre, 0.5))
        left = painter.transform().map(QPointF(start, 0.5)).x()
        right = painter.transform().map(QPointF(end, 0.5)).x()
        text = LABELS[int(self.cycle["label"])]
        painter.save()
        painter.resetTransform()
        painter.setFont(self.track.font)
        metrics = painter.fontMetrics()
        if right - left > metrics.horizontalAdvance(text) + 6:
            painter.setPen(QColor("#ffffff"))
            painter.drawText(QPointF(where.x() - metrics.horizontalAdvance(text) / 2.0, where.y() + metrics.ascent() / 2.5), text)
        painter.restore()

    def mouseDragEvent(self, ev):
        ev.ignore()  # the body stays put; the view box below turns the drag into a time selection

    def mouseClickEvent(self, ev):
        from PySide6.QtCore import Qt

        if ev.button() == Qt.LeftButton:
            ev.accept()
            self.track.regionClicked.emit(self.cycle_id)
        else:
            ev.ignore()

    def snap(self, value: float) -> float:
        """The value an edge dropped at ``value`` ends up at (neighbour boundary or playhead when close)."""
        tolerance = self.track.seconds_per_pixel() * SNAP_PIXELS
        targets = [b for b in self._neighbours if b is not None]
        if self.track.playhead is not None:
            targets.append(self.track.playhead)
        best = min(targets, key=lambda t: abs(t - value), default=None)
        if best is not None and abs(best - value) <= tolerance:
            return best
        return value

    def _snap_and_finish(self, line) -> None:
        index = 0 if line is self.lines[0] else 1
        value = self.snap(line.value())
        low, high = line.maxRange
        if low is not None:
            value = max(low, value)
        if high is not None:
            value = min(high, value)
        span = list(self._original)
        span[index] = float(value)
        if abs(span[index] - self._original[index]) < 1e-6:
            line.setValue(self._original[index])
            return
        # Deferred: the view redraws the regions, and this item is still inside its own mouse handler.
        cycle_id, start, end = self.cycle_id, span[0], span[1]
        QTimer.singleShot(0, lambda: self.track.boundaryMoved.emit(cycle_id, start, end))


class CycleShadows(pg.GraphicsObject):
    """Faint label-coloured bands for every cycle in another pane (one item, one paint, nothing to click)."""

    def __init__(self):
        super().__init__()
        self.cycles: list[dict] = []
        self.selected: int | None = None
        self.setZValue(-10)
        self.setAcceptedMouseButtons(pg.QtCore.Qt.NoButton)

    def set_cycles(self, cycles, selected) -> None:
        before, was_selected = {c["id"]: c for c in self.cycles}, self.selected
        self.cycles = list(cycles)
        self.selected = selected
        spans = [(c["id"], c["start"], c["end"]) for c in self.cycles]
        if spans != [(c["id"], c["start"], c["end"]) for c in before.values()]:
            self.prepareGeometryChange()
            self.update()
            return
        # The same bands: repaint only those whose colour changed (a relabel, another selection).
        view = self.getViewBox()
        if view is None:
            return
        (_, _), (y0, y1) = view.viewRange()
        for cycle in self.cycles:
            old = before[cycle["id"]]
            if old["label"] != cycle["label"] or cycle["id"] in (selected, was_selected) and selected != was_selected:
                self.update(QRectF(cycle["start"], y0, cycle["end"] - cycle["start"], y1 - y0))

    def boundingRect(self) -> QRectF:
        view = self.getViewBox()
        if view is None or not self.cycles:
            return QRectF()
        (_, _), (y0, y1) = view.viewRange()
        start = min(c["start"] for c in self.cycles)
        end = max(c["end"] for c in self.cycles)
        return QRectF(start, y0, end - start, y1 - y0)

    def viewRangeChanged(self):
        self.prepareGeometryChange()

    def paint(self, painter, *args):
        view = self.getViewBox()
        if view is None:
            return
        (_, _), (y0, y1) = view.viewRange()
        painter.setPen(pg.mkPen(None))
        for cycle in self.cycles:
            alpha = 70 if cycle["id"] == self.selected else 35
            painter.setBrush(pg.mkBrush(qcolor(cycle["label"], alpha)))
            painter.drawRect(QRectF(cycle["start"], y0, cycle["end"] - cycle["start"], y1 - y0))


class CycleTrack(QObject):
    """Draws the cycles of one recording in ``plot`` (and faint copies in ``shadow_plots``)."""

    regionClicked = Signal(int)  # cycle id
    boundaryMoved = Signal(int, float, float)  # cycle id, new start, new end

    def __init__(self, plot: pg.PlotItem, shadow_plots=(), parent=None):
        super().__init__(parent)
        self.plot = plot
        self.shadow_plots = list(shadow_plots)
        self.cycles: list[dict] = []
        self.selected: int | None = None
        self.playhead: float | None = None
        self.duration: float | None = None
        self.regions: dict[int, CycleRegion] = {}
        self._signature = None
        self._shadows: list[CycleShadows] = []
        for shadow_plot in self.shadow_plots:
            shadow = CycleShadows()
            shadow_plot.addItem(shadow, ignoreBounds=True)
            self._shadows.append(shadow)
        self.font = QFont()
        self.font.setPointSize(8)
        self.font.setBold(True)

    def seconds_per_pixel(self) -> float:
        vb = self.plot.getViewBox()
        (x0, x1), _ = vb.viewRange()
        width = max(1.0, vb.width())
        return (x1 - x0) / width

    def set_cycles(self, cycles: list[dict], duration: float | None, selected: int | None = None) -> None:
        cycles = sorted(cycles, key=lambda c: (c["start"], c["id"]))
        selected = selected if any(c["id"] == selected for c in cycles) else None
        signature = ([(c["id"], c["start"], c["end"], c["label"]) for c in cycles], duration, selected)
        self.cycles = cycles
        self.duration = duration
        self.selected = selected
        if signature == self._signature:
            return
        self._signature = signature
        self.rebuild()

    def select(self, cycle_id: int | None) -> None:
        if cycle_id == self.selected:
            return
        self.set_cycles(self.cycles, self.duration, cycle_id)

    def rebuild(self) -> None:
        """Draw ``cycles``: the regions already there are redrawn in place when the same cycles remain (a
        relabel, a moved edge, another selection); otherwise they are made again."""
        end_of_audio = self.duration if self.duration else max([c["end"] for c in self.cycles] + [0.0])
        bounds = [
            (self.cycles[i - 1]["end"] if i > 0 else 0.0,
             self.cycles[i + 1]["start"] if i + 1 < len(self.cycles) else end_of_audio)
            for i in range(len(self.cycles))
        ]
        if list(self.regions) == [c["id"] for c in self.cycles]:
            for cycle, limits in zip(self.cycles, bounds):
                self.regions[cycle["id"]].show_cycle(cycle, limits, cycle["id"] == self.selected)
        else:
            for region in self.regions.values():
                self.plot.removeItem(region)
            self.regions.clear()
            for cycle, limits in zip(self.cycles, bounds):
                region = CycleRegion(self, cycle, limits, cycle["id"] == self.selected)
                self.plot.addItem(region)
                self.regions[cycle["id"]] = region
        for shadow in self._shadows:
            shadow.set_cycles(self.cycles, self.selected)

    def cycle_at(self, seconds: float) -> dict | None:
        for cycle in self.cycles:
            if cycle["start"] <= seconds < cycle["end"]:
                return cycle
        return None

    def neighbour(self, cycle_id: int | None, step: int, from_time: float = 0.0) -> dict | None:
        """The cycle ``step`` places after (or before) ``cycle_id``; with none selected, the first after ``from_time``."""
        if not self.cycles:
            return None
        ids = [c["id"] for c in self.cycles]
        if cycle_id in ids:
            index = ids.index(cycle_id) + step
            return self.cycles[index] if 0 <= index < len(self.cycles) else None
        if step > 0:
            return next((c for c in self.cycles if c["end"] > from_time), None)
        return next((c for c in reversed(self.cycles) if c["start"] < from_time), None)

    def free_gap(self, seconds: float) -> tuple[float, float] | None:
        """The gap between cycles that contains ``seconds`` (None when inside a cycle)."""
        if self.cycle_at(seconds) is not None:
            return None
        low = max([c["end"] for c in self.cycles if c["end"] <= seconds] + [0.0])
        end_of_audio = self.duration if self.duration else float("inf")
        high = min([c["start"] for c in self.cycles if c["start"] >= seconds] + [end_of_audio])
        return low, high

    def drag_edge(self, cycle_id: int, edge: str, to: float) -> None:
        """Move an edge as a mouse drag would (clamped to its gap, snapped, then reported); for keyboard and tests."""
        region = self.regions[cycle_id]
        line = region.lines[0 if edge == "start" else 1]
        line.setValue(to)  # InfiniteLine clamps to its bounds like during a drag
        line.sigPositionChangeFinished.emit(line)


def make_track_plot() -> pg.PlotItem:
    plot = pg.PlotItem(viewBox=TimeViewBox())
    plot.hideAxis("left")
    plot.showAxis("bottom")
    plot.setYRange(0, 1, padding=0)
    plot.getViewBox().setLimits(yMin=0, yMax=1)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    return plot
