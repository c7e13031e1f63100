"""What every chart of the Compare view shares: a white, paper-ready pyqtgraph canvas with a title row,
PNG and SVG export, and a redraw that waits until the chart is on screen.

PNG goes through ``pyqtgraph.exporters.ImageExporter``. SVG is drawn by Qt's own ``QSvgGenerator``:
pyqtgraph 0.14's ``SVGExporter`` fails on the path syntax Qt 6.10+ writes (pyqtgraph issue #3485),
for every plot, even an empty one.
"""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401  (registers ImageExporter under pg.exporters)
from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

# Matplotlib's tab10: distinct, print-safe, and what readers of papers are used to.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
INK = "#212121"


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def with_alpha(hex_color: str, alpha: int):
    from PySide6.QtGui import QColor

    c = QColor(hex_color)
    c.setAlpha(alpha)
    return c


def style_plot(plot: pg.PlotItem, title: str = "", left: str = "", bottom: str = "") -> pg.PlotItem:
    """Dark axes and labels on white, a light grid."""
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(INK))
        axis.setTextPen(pg.mkPen(INK))
    if title:
        plot.setTitle(title, color=INK, size="11pt")
    if left:
        plot.setLabel("left", left, color=INK)
    if bottom:
        plot.setLabel("bottom", bottom, color=INK)
    plot.showGrid(x=True, y=True, alpha=0.15)
    plot.setMenuEnabled(False)
    return plot


def legend(plot: pg.PlotItem, offset=(-8, -8)) -> pg.LegendItem:
    """A legend in a corner (negative offsets: from the right, from the bottom), bottom right by default."""
    item = plot.addLegend(offset=offset, labelTextColor=INK, brush=pg.mkBrush(255, 255, 255, 220),
                          pen=pg.mkPen("#bdbdbd"))
    item.setLabelTextSize("8pt")
    return item


def _area(canvas: pg.GraphicsLayoutWidget) -> QRectF:
    """What the chart covers in its scene: its layout, not the scene's rect, which only ever grows."""
    return canvas.ci.sceneBoundingRect()


def tidy_legend(item: pg.LegendItem) -> None:
    """An empty legend is a stray white square: show it only with something in it."""
    item.setVisible(bool(item.items))


def export_png(canvas: pg.GraphicsLayoutWidget, path: str | Path, scale: float = 2.0) -> Path:
    exporter = pg.exporters.ImageExporter(canvas.ci)
    exporter.parameters()["width"] = int(_area(canvas).width() * scale)
    exporter.export(str(path))
    return Path(path)


def export_svg(canvas: pg.GraphicsLayoutWidget, path: str | Path, title: str = "") -> Path:
    rect = _area(canvas)
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(QSize(int(rect.width()), int(rect.height())))
    generator.setViewBox(QRectF(0, 0, rect.width(), rect.height()))
    generator.setTitle(title or "RSC Studio chart")
    painter = QPainter(generator)
    try:
        canvas.scene().render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
    finally:
        painter.end()
    return Path(path)


class ChartPanel(QWidget):
    """A titled chart: subclasses fill ``controls`` and implement :meth:`draw`; :meth:`invalidate` asks for
    a redraw, done at once when the chart is on screen and otherwise when it is next shown."""

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.title = QLabel(f"<b>{title}</b>")
        self.note = QLabel("")
        self.note.setStyleSheet("color: #616161")
        # Their texts change with every selection; their size must not, or the chart below re-lays out and
        # repaints from scratch each time.
        for label in (self.title, self.note):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.controls = QHBoxLayout()
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground("w")
        self.png_button = QPushButton("PNG...")
        self.svg_button = QPushButton("SVG...")
        self.png_button.setToolTip("Save this chart as a PNG image (twice the size on screen)")
        self.svg_button.setToolTip("Save this chart as an SVG drawing (for papers)")
        self.png_button.clicked.connect(lambda: self._ask_export("png"))
        self.svg_button.clicked.connect(lambda: self._ask_export("svg"))
        row = QHBoxLayout()
        row.addWidget(self.title, 1)
        row.addLayout(self.controls)
        row.addWidget(self.png_button)
        row.addWidget(self.svg_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.note)
        layout.addWidget(self.canvas, 1)
        self._dirty = True

    # -- drawing when seen ----------------------------------------------------------------------------
    def invalidate(self) -> None:
        self._dirty = True
        if self.isVisible():
            self.redraw()

    def redraw(self) -> None:
        self._dirty = False
        self.draw()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._dirty:
            self.redraw()

    def draw(self) -> None:
        raise NotImplementedError

    # -- exports --------------------------------------------------------------------------------------------
    def export_png(self, path: str | Path) -> Path:
        if self._dirty:
            self.redraw()
        return export_png(self.canvas, path)

    def export_svg(self, path: str | Path) -> Path:
        if self._dirty:
            self.redraw()
        return export_svg(self.canvas, path, self.title.text())

    def _ask_export(self, fmt: str) -> None:
        name = self.title.text().replace("<b>", "").replace("</b>", "").split(":")[0].strip().lower()
        path, _ = QFileDialog.getSaveFileName(self, f"Save chart as {fmt.upper()}", f"{name.replace(' ', '-')}.{fmt}",
                                              f"{fmt.upper()} (*.{fmt})")
        if path:
            (self.export_png if fmt == "png" else self.export_svg)(path)
