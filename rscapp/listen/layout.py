"""Listen's widgets, built onto the view (as Qt Designer's ``setupUi`` does): the title, the two bars, the
waveform, spectrogram and cycle-track plots on one linked time axis with their playheads and selection,
the cycle table beside them, the overlays and the status line."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QSplitter, QVBoxLayout

from .cyclepanel import CyclePanel
from .cycletrack import CycleTrack, make_track_plot
from .overlays import KeysOverlay, MessageOverlay
from .spectrogram import lookup_table
from .timeaxis import TimeViewBox
from .toolbar import build_spec_bar, build_toolbar
from .zoom import DETAIL_DELAY_MS

if TYPE_CHECKING:
    from .view import ListenView

PLAYHEAD_COLOR = "#ffd54f"
BACKGROUND = "#1e1f22"


class DrawnImageItem(pg.ImageItem):
    """An ImageItem that says when a new image has actually been painted (for the view's `spectrogramDrawn`)."""

    painted = Signal()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.announce = False

    def paint(self, painter, *args):
        super().paint(painter, *args)
        if self.announce and self.image is not None:
            self.announce = False
            self.painted.emit()


def setup_ui(view: "ListenView") -> None:
    view.setFocusPolicy(Qt.StrongFocus)
    layout = QVBoxLayout(view)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.setSpacing(3)
    view.title = QLabel()
    view.title.setTextFormat(Qt.RichText)
    view.title.setObjectName("listenTitle")
    layout.addWidget(view.title)
    view.toolbar = build_toolbar(view)
    layout.addWidget(view.toolbar)
    view.spec_bar = build_spec_bar(view)
    layout.addWidget(view.spec_bar)

    view.graphics = pg.GraphicsLayoutWidget()
    view.graphics.setFocusPolicy(Qt.StrongFocus)
    view.graphics.setBackground(BACKGROUND)
    view.graphics.installEventFilter(view)
    view.setFocusProxy(view.graphics)
    view.panel = CyclePanel()
    view.panel.forward_keys_to(view)
    view.panel.cycleActivated.connect(view.select_cycle)
    view.panel.boundaryEdited.connect(view._on_boundary_moved)
    view.splitter = QSplitter(Qt.Horizontal)
    view.splitter.addWidget(view.graphics)
    view.splitter.addWidget(view.panel)
    view.splitter.setStretchFactor(0, 1)
    view.splitter.setStretchFactor(1, 0)
    view.splitter.setSizes([1000, 340])
    view.splitter.setCollapsible(0, False)
    layout.addWidget(view.splitter, 1)

    _plots(view)
    _images(view)
    _marks(view)
    view.track = CycleTrack(view.track_plot, shadow_plots=[view.wave_plot], parent=view)
    view.track.regionClicked.connect(lambda cid: view.select_cycle(cid))
    view.track.boundaryMoved.connect(view._on_boundary_moved)
    view.overlay = MessageOverlay(view.graphics)
    view.overlay.cancelRequested.connect(view.cancel_loading)
    view.keys_overlay = KeysOverlay(view.graphics)

    bottom = QHBoxLayout()
    view.status = QLabel()
    view.status.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
    view.position_label = QLabel()
    view.position_label.setObjectName("listenPosition")
    bottom.addWidget(view.status, 1)
    bottom.addStretch(0)
    bottom.addWidget(view.position_label)
    layout.addLayout(bottom)


def _plots(view: "ListenView") -> None:
    view.wave_plot = pg.PlotItem(viewBox=TimeViewBox())
    view.spec_plot = pg.PlotItem(viewBox=TimeViewBox())
    view.track_plot = make_track_plot()
    for plot in (view.wave_plot, view.spec_plot, view.track_plot):
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.getAxis("left").setWidth(62)
        vb = plot.getViewBox()
        vb.sigSelecting.connect(view._on_selecting)
        vb.sigClicked.connect(view._on_plot_clicked)
    view.wave_plot.setLabel("left", "Amplitude")
    view.wave_plot.hideAxis("bottom")
    view.wave_plot.setMaximumHeight(130)
    view.wave_plot.setMinimumHeight(90)
    view.wave_plot.setYRange(-1, 1, padding=0.02)
    view.spec_plot.setLabel("left", "Frequency", units="Hz")
    view.spec_plot.hideAxis("bottom")
    view.track_plot.setLabel("bottom", "Time", units="s")
    view.track_plot.setLabel("left", "Cycles")
    view.track_plot.showAxis("left")
    view.track_plot.getAxis("left").setTicks([[]])
    view.track_plot.setMaximumHeight(78)
    view.track_plot.setMinimumHeight(78)
    view.spec_plot.setXLink(view.wave_plot)
    view.track_plot.setXLink(view.wave_plot)
    view.graphics.addItem(view.wave_plot, row=0, col=0)
    view.graphics.addItem(view.spec_plot, row=1, col=0)
    view.graphics.addItem(view.track_plot, row=2, col=0)
    view.graphics.ci.layout.setRowStretchFactor(1, 10)
    view.graphics.ci.layout.setVerticalSpacing(2)


def _images(view: "ListenView") -> None:
    view.curve = pg.PlotDataItem(pen=pg.mkPen("#90caf9", width=1))
    view.wave_plot.addItem(view.curve)
    # After addItem: PlotItem hands its own (off) downsampling and clipping to every item it adopts.
    view.wave_plot.setDownsampling(auto=True, mode="peak")
    view.wave_plot.setClipToView(True)
    # pyqtgraph keeps ~5 points per pixel by default; min/max pairs at ~1.5 per pixel look the same and
    # draw several times faster on a 20 s, 44.1 kHz recording.
    view.curve.opts["autoDownsampleFactor"] = 1.5
    view.curve.setSkipFiniteCheck(True)
    view.image = DrawnImageItem(axisOrder="col-major")
    view.image.setLookupTable(lookup_table(view.spec_settings.colormap))
    view.image.painted.connect(view._on_image_painted)
    view.spec_plot.addItem(view.image)
    # Zoomed in on a long recording, the overview's columns are far apart: a second image computed for
    # the visible span only sits on top of it.
    view.detail_image = pg.ImageItem(axisOrder="col-major")
    view.detail_image.setLookupTable(lookup_table(view.spec_settings.colormap))
    view.detail_image.setZValue(1)
    view.detail_image.hide()
    view.spec_plot.addItem(view.detail_image)
    view._detail_timer = QTimer(view)
    view._detail_timer.setSingleShot(True)
    view._detail_timer.setInterval(DETAIL_DELAY_MS)
    view._detail_timer.timeout.connect(view._update_detail)
    view.wave_plot.getViewBox().sigXRangeChanged.connect(lambda *_: view._detail_timer.start())


def _marks(view: "ListenView") -> None:
    view.playheads = []
    for plot in (view.wave_plot, view.spec_plot, view.track_plot):
        line = pg.InfiniteLine(pos=0, angle=90, movable=False, pen=pg.mkPen(PLAYHEAD_COLOR, width=2))
        line.setZValue(50)
        plot.addItem(line)
        view.playheads.append(line)
    view.selection_items = []
    for plot in (view.wave_plot, view.spec_plot):
        region = pg.LinearRegionItem(
            values=(0, 0), brush=pg.mkBrush(255, 255, 255, 45), pen=pg.mkPen(255, 255, 255, 140), movable=False
        )
        region.setZValue(30)
        region.hide()
        plot.addItem(region)
        view.selection_items.append(region)
    view.cycle_marks = []
    for _ in range(2):
        line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#ffffff", width=1, style=Qt.DashLine))
        line.setZValue(40)
        line.hide()
        view.spec_plot.addItem(line)
        view.cycle_marks.append(line)
