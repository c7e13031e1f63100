"""The Listen area: waveform, spectrogram and cycle track on one time axis, playback and label editing.

The view is a window onto the project: the cycles it draws are re-read from the project after every
edit, undo and redo, and every edit is a command on the view's QUndoStack that writes through the
project at once (see :mod:`.commands`). Audio is read and the spectrogram computed on a pool thread
(:mod:`rscapp.workers`); the cycle track is drawn straight from the project before the audio arrives,
so labels stay editable when a recording's audio is missing or still loading.

Keys work while the focus is anywhere in the view (they are listed in the Keys overlay, F1 or ?):
Space play/pause, 1-4 relabel, Left/Right or P/N previous/next cycle, Ctrl+B add a cycle over the
selection, S split at the playhead, Delete, +/- zoom, L loop, Ctrl+Z / Ctrl+Shift+Z undo/redo.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QMetaMethod, QRectF, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QUndoStack
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from trainer.audio import AudioError, audio_info
from trainer.labels import EXTENSIONS, FORMAT_NAMES, FORMATS, LabelError, detect_format, export_labels, read_text
from trainer.project import LABELS, ProjectError

from . import commands
from .cyclepanel import CyclePanel
from .cycletrack import MIN_CYCLE, CycleTrack, label_qcolor, make_track_plot
from .player import SPEEDS, Player
from .spectrogram import (
    BUILTIN_PRESETS,
    CACHE,
    COLORMAPS,
    WINDOW_LENGTHS,
    Spectrogram,
    SpectrogramSettings,
    compute_spectrogram,
    lookup_table,
)
from .timeaxis import TimeViewBox

try:
    from rscapp.workers import Cancelled, Task, start as start_task
except ImportError:  # pragma: no cover - the shell always ships workers; this keeps the view importable alone
    Cancelled = Task = start_task = None

SETTINGS_ORG = "RSC Studio"
SETTINGS_APP = "RSC Studio"
PRESETS_KEY = "listen/spectrogram_presets"
CURRENT_KEY = "listen/spectrogram"
PLAYHEAD_COLOR = "#ffd54f"
AUDIO_CACHE_SIZE = 4
DETAIL_DELAY_MS = 120  # wait for the zoom/scroll to settle before computing a detail spectrogram
# Blocks for reading long files, so a multi-minute recording shows progress and can be cancelled.
READ_BLOCK = 1 << 20

KEYS_HELP = [
    ("Space", "play / pause (the selection, else the selected cycle, else from the playhead)"),
    ("1 2 3 4", "relabel the selected cycle: normal, crackle, wheeze, both"),
    ("\u2190 \u2192  or  P N", "previous / next cycle (auto-play plays it)"),
    ("Ctrl+B", "add a cycle over the time selection (drag in the plots to select)"),
    ("S", "split the cycle under the playhead"),
    ("Delete", "delete the selected cycle"),
    ("+  \u2212  0", "zoom in / out / whole recording (Ctrl+wheel zooms at the mouse)"),
    ("wheel, \u2190 \u2192", "scroll (arrows scroll when no cycle is selected)"),
    ("Home  End", "playhead to start / end"),
    ("L", "loop on / off"),
    ("Ctrl+Z  Ctrl+Shift+Z", "undo / redo"),
    ("Esc", "stop, clear the selection"),
    ("F1  ?", "show / hide this list"),
]


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


def _read_audio(path: Path, progress) -> tuple[np.ndarray, int]:
    """Mono float32 and rate, in blocks with progress; AudioError names the file."""
    import soundfile as sf

    info = audio_info(path)
    total = info["frames"]
    try:
        with sf.SoundFile(str(path)) as handle:
            out = np.empty(total, dtype=np.float32)
            done = 0
            while done < total:
                block = handle.read(min(READ_BLOCK, total - done), dtype="float32", always_2d=True)
                if not len(block):
                    break
                out[done : done + len(block)] = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
                done += len(block)
                if total > READ_BLOCK:
                    progress(done, total * 2, "Reading audio")
    except (AudioError, Cancelled):
        raise
    except Exception as exc:
        raise AudioError(f"{path}: cannot read samples ({exc})") from exc
    return out[:done], int(info["sample_rate"])


def load_audio_task(path: Path, key: tuple, settings: SpectrogramSettings, progress) -> dict:
    """Pool-thread work for opening a recording: samples, then the spectrogram (from the cache when there)."""
    progress(0, 2, "Reading audio")
    wave, rate = _read_audio(path, progress)
    spec = spectrogram_task(wave, rate, key, settings, progress)
    return {"wave": wave, "rate": rate, "spec": spec, "key": key}


def spectrogram_task(wave, rate, key, settings, progress) -> Spectrogram:
    cache_key = key + settings.compute_key()
    spec = CACHE.get(cache_key)
    if spec is None:
        frames = max(1, len(wave))
        spec = compute_spectrogram(
            wave, rate, settings, progress=lambda done, total: progress(frames + done * frames // max(total, 1), frames * 2, "Spectrogram")
        )
        CACHE.put(cache_key, spec)
    return spec


def _format_time(seconds: float) -> str:
    seconds = max(0.0, seconds)
    minutes = int(seconds // 60)
    return f"{minutes:02d}:{seconds - minutes * 60:06.3f}"


class ListenView(QWidget):
    cyclesChanged = Signal(int)  # recording id, after any edit, undo or redo
    statusMessage = Signal(str)
    audioLoaded = Signal(int)  # recording id; the samples are in and playable
    spectrogramDrawn = Signal(int)  # recording id; a new spectrogram image has been painted

    def __init__(self, parent=None):
        super().__init__(parent)
        self.project = None
        self.current_recording_id: int | None = None
        self.current_cycle_id: int | None = None
        self.recording: dict | None = None
        self.cycles: list[dict] = []
        self.selection: tuple[float, float] | None = None
        self.wave: np.ndarray | None = None
        self.rate: int | None = None
        self.spectrogram: Spectrogram | None = None
        self.audio_error: str | None = None
        self.loading = False
        self._task = None
        self._spec_task = None
        self._audio_key: tuple | None = None
        self._audio_cache: OrderedDict[tuple, tuple[np.ndarray, int]] = OrderedDict()
        self._pending_cycle: int | None = None
        self._follow = True
        self._store = QSettings(SETTINGS_ORG, SETTINGS_APP)
        self.spec_settings = self._load_current_settings()
        self.player = Player(self)
        self.player.positionChanged.connect(self._on_position)
        self.player.stateChanged.connect(self._on_play_state)
        self.player.error.connect(self._status)
        self._stack = QUndoStack(self)
        self._stack_index = 0
        self._pushing = False
        self._stack.indexChanged.connect(self._on_stack_changed)
        self._build()
        self._apply_player_prefs()
        self._show_overlay("Open a recording from the Library to listen to it and edit its cycles.")
        self._update_title()
        self._update_actions()

    # == public contract =========================================================================
    def undo_stack(self) -> QUndoStack:
        return self._stack

    def set_project(self, project) -> None:
        """Show another project (or none); the undo history belongs to the project and goes with it."""
        self.player.stop()
        self._cancel_tasks()
        self._stack.clear()
        self.project = project
        self.current_recording_id = None
        self.current_cycle_id = None
        self.recording = None
        self.cycles = []
        self.selection = None
        self._audio_cache.clear()
        self._clear_audio()
        self.track.set_cycles([], None)
        self.panel.set_cycles([], None)
        self._update_history()
        self._update_selection_items()
        self._show_overlay(
            "Open a recording from the Library to listen to it and edit its cycles." if project else "No project open."
        )
        self._update_title()
        self._update_actions()

    def open_recording(self, recording_id: int, cycle_id: int | None = None) -> None:
        """Show a recording: cycles at once, audio and spectrogram as soon as the pool thread has them."""
        if self.project is None:
            self._status("No project open")
            return
        try:
            rec = self.project.recording(int(recording_id))
        except ProjectError as exc:
            self._status(str(exc))
            return
        same = recording_id == self.current_recording_id and self.wave is not None
        self.recording = rec
        self.current_recording_id = int(recording_id)
        if same:
            self._reload_cycles()
            if cycle_id is not None:
                self.select_cycle(cycle_id)
            return
        self.player.stop()
        self._cancel_tasks()
        self._clear_audio()
        self.selection = None
        self.current_cycle_id = None
        self.cycles = self.project.cycles(recording_id=self.current_recording_id)
        self._pending_cycle = cycle_id
        # The pool thread reads and computes while this thread draws the cycle track.
        self._set_time_span(self._span_end())
        self._start_loading()
        if self.wave is None:
            self._reload_cycles()
        if cycle_id is not None:
            self.select_cycle(cycle_id, play=False)
            if self.wave is not None:
                self._zoom_to_cycle(cycle_id)
        self._update_selection_items()
        self._update_title()
        self.graphics.setFocus()

    # == building =================================================================================
    def _build(self) -> None:
        self.setFocusPolicy(Qt.StrongFocus)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        self.title = QLabel()
        self.title.setTextFormat(Qt.RichText)
        self.title.setObjectName("listenTitle")
        layout.addWidget(self.title)
        self.toolbar = self._build_toolbar()
        layout.addWidget(self.toolbar)
        self.spec_bar = self._build_spec_bar()
        layout.addWidget(self.spec_bar)

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setFocusPolicy(Qt.StrongFocus)
        self.graphics.setBackground("#1e1f22")
        self.graphics.installEventFilter(self)
        self.setFocusProxy(self.graphics)
        self.panel = CyclePanel()
        self.panel.forward_keys_to(self)
        self.panel.cycleActivated.connect(self._on_row_activated)
        self.panel.boundaryEdited.connect(self._on_boundary_moved)
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(self.graphics)
        self.splitter.addWidget(self.panel)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([1000, 340])
        self.splitter.setCollapsible(0, False)
        layout.addWidget(self.splitter, 1)

        self.wave_plot = pg.PlotItem(viewBox=TimeViewBox())
        self.spec_plot = pg.PlotItem(viewBox=TimeViewBox())
        self.track_plot = make_track_plot()
        for plot in (self.wave_plot, self.spec_plot, self.track_plot):
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.getAxis("left").setWidth(62)
            vb = plot.getViewBox()
            vb.sigSelecting.connect(self._on_selecting)
            vb.sigClicked.connect(self._on_plot_clicked)
        self.wave_plot.setLabel("left", "Amplitude")
        self.wave_plot.hideAxis("bottom")
        self.wave_plot.setMaximumHeight(130)
        self.wave_plot.setMinimumHeight(90)
        self.wave_plot.setYRange(-1, 1, padding=0.02)
        self.spec_plot.setLabel("left", "Frequency", units="Hz")
        self.spec_plot.hideAxis("bottom")
        self.track_plot.setLabel("bottom", "Time", units="s")
        self.track_plot.setLabel("left", "Cycles")
        self.track_plot.showAxis("left")
        self.track_plot.getAxis("left").setTicks([[]])
        self.track_plot.setMaximumHeight(78)
        self.track_plot.setMinimumHeight(78)
        self.spec_plot.setXLink(self.wave_plot)
        self.track_plot.setXLink(self.wave_plot)
        self.graphics.addItem(self.wave_plot, row=0, col=0)
        self.graphics.addItem(self.spec_plot, row=1, col=0)
        self.graphics.addItem(self.track_plot, row=2, col=0)
        self.graphics.ci.layout.setRowStretchFactor(1, 10)
        self.graphics.ci.layout.setVerticalSpacing(2)

        self.curve = pg.PlotDataItem(pen=pg.mkPen("#90caf9", width=1))
        self.wave_plot.addItem(self.curve)
        # After addItem: PlotItem hands its own (off) downsampling and clipping to every item it adopts.
        self.wave_plot.setDownsampling(auto=True, mode="peak")
        self.wave_plot.setClipToView(True)
        # pyqtgraph keeps ~5 points per pixel by default; min/max pairs at ~1.5 per pixel look the same and
        # draw several times faster on a 20 s, 44.1 kHz recording.
        self.curve.opts["autoDownsampleFactor"] = 1.5
        self.curve.setSkipFiniteCheck(True)
        self.image = DrawnImageItem(axisOrder="col-major")
        self.image.setLookupTable(lookup_table(self.spec_settings.colormap))
        self.image.painted.connect(self._on_image_painted)
        self.spec_plot.addItem(self.image)
        # Zoomed in on a long recording, the overview's columns are far apart: a second image computed for
        # the visible span only sits on top of it (Sonic Visualiser does the same per zoom level).
        self.detail_image = pg.ImageItem(axisOrder="col-major")
        self.detail_image.setLookupTable(lookup_table(self.spec_settings.colormap))
        self.detail_image.setZValue(1)
        self.detail_image.hide()
        self.spec_plot.addItem(self.detail_image)
        self.detail: Spectrogram | None = None
        self._detail_task = None
        self._detail_timer = QTimer(self)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(DETAIL_DELAY_MS)
        self._detail_timer.timeout.connect(self._update_detail)
        self.wave_plot.getViewBox().sigXRangeChanged.connect(lambda *_: self._detail_timer.start())

        self.playheads = []
        for plot in (self.wave_plot, self.spec_plot, self.track_plot):
            line = pg.InfiniteLine(pos=0, angle=90, movable=False, pen=pg.mkPen(PLAYHEAD_COLOR, width=2))
            line.setZValue(50)
            plot.addItem(line)
            self.playheads.append(line)
        self.selection_items = []
        for plot in (self.wave_plot, self.spec_plot):
            region = pg.LinearRegionItem(
                values=(0, 0), brush=pg.mkBrush(255, 255, 255, 45), pen=pg.mkPen(255, 255, 255, 140), movable=False
            )
            region.setZValue(30)
            region.hide()
            plot.addItem(region)
            self.selection_items.append(region)
        self.cycle_marks = []
        for _ in range(2):
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#ffffff", width=1, style=Qt.DashLine))
            line.setZValue(40)
            line.hide()
            self.spec_plot.addItem(line)
            self.cycle_marks.append(line)

        self.track = CycleTrack(self.track_plot, shadow_plots=[self.wave_plot], parent=self)
        self.track.regionClicked.connect(lambda cid: self.select_cycle(cid))
        self.track.boundaryMoved.connect(self._on_boundary_moved)

        # Overlays over the plots: loading/missing-audio message and the keys list.
        self.overlay = QFrame(self.graphics)
        self.overlay.setObjectName("listenOverlay")
        self.overlay.setStyleSheet(
            "#listenOverlay { background: rgba(30,31,34,225); border: 1px solid #555; border-radius: 6px; }"
            "QLabel { color: #eeeeee; }"
        )
        box = QVBoxLayout(self.overlay)
        self.overlay_text = QLabel()
        self.overlay_text.setWordWrap(True)
        self.overlay_text.setAlignment(Qt.AlignCenter)
        self.overlay_text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        box.addWidget(self.overlay_text)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setFocusPolicy(Qt.NoFocus)
        self.cancel_button.clicked.connect(self.cancel_loading)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        box.addLayout(row)
        self.keys_overlay = QLabel(self.graphics)
        self.keys_overlay.setTextFormat(Qt.RichText)
        self.keys_overlay.setStyleSheet(
            "QLabel { background: rgba(20,20,24,235); color: #eeeeee; border: 1px solid #777; border-radius: 6px;"
            " padding: 10px; }"
        )
        rows = "".join(
            f"<tr><td style='padding-right:14px'><b>{key}</b></td><td>{text}</td></tr>" for key, text in KEYS_HELP
        )
        self.keys_overlay.setText(f"<b>Listen keys</b><table>{rows}</table><br><i>F1 or ? closes this list.</i>")
        self.keys_overlay.hide()

        bottom = QHBoxLayout()
        self.status = QLabel()
        self.status.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.position_label = QLabel()
        self.position_label.setObjectName("listenPosition")
        bottom.addWidget(self.status, 1)
        bottom.addStretch(0)
        bottom.addWidget(self.position_label)
        layout.addLayout(bottom)
        self._on_position(0.0)

    def _action(self, text: str, key: str, slot, checkable=False, tip: str | None = None) -> QAction:
        action = QAction(text, self)
        action.setToolTip(f"{tip or text} ({key})" if key else (tip or text))
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        return action

    def _build_toolbar(self) -> QToolBar:
        bar = QToolBar()
        bar.setIconSize(QSize(16, 16))
        bar.setToolButtonStyle(Qt.ToolButtonTextOnly)
        self.act_play = self._action("\u25b6 Play", "Space", self.play_pause, tip="Play / pause the selection, the selected cycle or from the playhead")
        self.act_stop = self._action("\u25a0 Stop", "Esc", self.stop, tip="Stop")
        self.act_loop = self._action("Loop", "L", self._on_loop_toggled, checkable=True, tip="Loop playback")
        bar.addAction(self.act_play)
        bar.addAction(self.act_stop)
        bar.addAction(self.act_loop)
        self.speed_box = QComboBox()
        for speed in SPEEDS:
            self.speed_box.addItem(f"{speed:g}\u00d7", speed)
        self.speed_box.setToolTip("Playback speed (changes pitch, like a tape)")
        self.speed_box.currentIndexChanged.connect(self._on_speed_changed)
        self.speed_box.setFocusPolicy(Qt.NoFocus)
        bar.addWidget(self.speed_box)
        self.act_autoplay = self._action(
            "Auto-play", "", self._on_autoplay_toggled, checkable=True, tip="Play each cycle when moving to it with N/P or the arrows"
        )
        bar.addAction(self.act_autoplay)
        bar.addSeparator()
        self.label_actions = []
        for index, name in enumerate(LABELS):
            action = self._action(f"{index + 1} {name}", str(index + 1), lambda _=False, i=index: self.relabel(i), tip=f"Label the selected cycle {name}")
            bar.addAction(action)
            button = bar.widgetForAction(action)
            color = label_qcolor(index).name()
            button.setStyleSheet(
                f"QToolButton {{ border-left: 4px solid {color}; padding-left: 4px; }}"
                f"QToolButton:checked {{ background: {color}; color: white; }}"
            )
            action.setCheckable(False)
            self.label_actions.append(action)
        bar.addSeparator()
        self.act_add = self._action("Add", "Ctrl+B", self.add_cycle_over_selection, tip="Add a cycle over the time selection")
        self.act_split = self._action("Split", "S", self.split_at_playhead, tip="Split the cycle under the playhead")
        self.act_delete = self._action("Delete", "Delete", self.delete_selected, tip="Delete the selected cycle")
        for action in (self.act_add, self.act_split, self.act_delete):
            bar.addAction(action)
        bar.addSeparator()
        self.act_undo = self._action("Undo", "Ctrl+Z", self._stack.undo)
        self.act_redo = self._action("Redo", "Ctrl+Shift+Z", self._stack.redo)
        bar.addAction(self.act_undo)
        bar.addAction(self.act_redo)
        bar.addSeparator()
        self.act_zoom_in = self._action("Zoom +", "+", lambda: self.zoom(1 / 1.5), tip="Zoom in")
        self.act_zoom_out = self._action("Zoom \u2212", "-", lambda: self.zoom(1.5), tip="Zoom out")
        self.act_fit = self._action("All", "0", self.zoom_all, tip="Show the whole recording")
        for action in (self.act_zoom_in, self.act_zoom_out, self.act_fit):
            bar.addAction(action)
        bar.addSeparator()
        self.act_export = self._action("Export\u2026", "", self.export_dialog, tip="Export this recording's cycles (ICBHI, CSV, Audacity, TextGrid)")
        self.act_import = self._action("Import\u2026", "", self.import_dialog, tip="Import cycles from ICBHI, CSV, Audacity or TextGrid labels")
        self.act_keys = self._action("Keys", "F1", self.toggle_keys_help, tip="Show the keyboard keys")
        self.act_table = self._action(
            "Table", "", lambda on: hasattr(self, "panel") and self.panel.setVisible(on), checkable=True,
            tip="Show the cycle table and the edit history beside the plots",
        )
        self.act_table.setChecked(True)
        for action in (self.act_export, self.act_import, self.act_table, self.act_keys):
            bar.addAction(action)
        for action in bar.actions():
            widget = bar.widgetForAction(action)
            if widget is not None:
                widget.setFocusPolicy(Qt.NoFocus)
        return bar

    def _build_spec_bar(self) -> QWidget:
        bar = QWidget()
        row = QHBoxLayout(bar)
        row.setContentsMargins(2, 0, 2, 0)
        row.addWidget(QLabel("Spectrogram:"))
        self.preset_box = QComboBox()
        self.preset_box.setToolTip("Spectrogram presets (saved for every project)")
        self.preset_box.setMinimumWidth(170)
        self.preset_box.activated.connect(self._on_preset_chosen)
        row.addWidget(self.preset_box)
        save = QToolButton()
        save.setText("Save\u2026")
        save.setToolTip("Save the current settings as a named preset")
        save.clicked.connect(self.save_preset_dialog)
        remove = QToolButton()
        remove.setText("Remove")
        remove.setToolTip("Remove the chosen preset (built-in presets stay)")
        remove.clicked.connect(self.remove_current_preset)
        row.addWidget(save)
        row.addWidget(remove)
        row.addSpacing(12)
        row.addWidget(QLabel("Window"))
        self.window_box = QComboBox()
        for n in WINDOW_LENGTHS:
            self.window_box.addItem(f"{n}", n)
        self.window_box.setToolTip("Window length in samples: short for crackles (time), long for wheezes (frequency)")
        row.addWidget(self.window_box)
        row.addWidget(QLabel("Max"))
        self.maxfreq_box = QSpinBox()
        self.maxfreq_box.setRange(100, 48000)
        self.maxfreq_box.setSingleStep(250)
        self.maxfreq_box.setSuffix(" Hz")
        self.maxfreq_box.setToolTip("Highest frequency shown (clipped to half the sample rate)")
        row.addWidget(self.maxfreq_box)
        row.addWidget(QLabel("Range"))
        self.range_box = QDoubleSpinBox()
        self.range_box.setRange(10, 150)
        self.range_box.setDecimals(0)
        self.range_box.setSingleStep(5)
        self.range_box.setSuffix(" dB")
        self.range_box.setToolTip("Dynamic range: how far below the loudest point still gets a colour")
        row.addWidget(self.range_box)
        row.addWidget(QLabel("Colours"))
        self.cmap_box = QComboBox()
        for name in COLORMAPS:
            self.cmap_box.addItem(name)
        row.addWidget(self.cmap_box)
        row.addStretch(1)
        for widget in (self.preset_box, self.window_box, self.maxfreq_box, self.range_box, self.cmap_box, save, remove):
            widget.setFocusPolicy(Qt.ClickFocus)
        self._refresh_presets()
        self._show_settings(self.spec_settings)
        self.window_box.currentIndexChanged.connect(self._on_settings_edited)
        self.maxfreq_box.editingFinished.connect(self._on_settings_edited)
        self.range_box.valueChanged.connect(self._on_settings_edited)
        self.cmap_box.currentIndexChanged.connect(self._on_settings_edited)
        return bar

    # == overlays, title, status ==================================================================
    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._place_overlays()

    def _place_overlays(self) -> None:
        rect = self.graphics.rect()
        width = min(560, rect.width() - 40)
        self.overlay.setFixedWidth(max(200, width))
        self.overlay.adjustSize()
        self.overlay.move((rect.width() - self.overlay.width()) // 2, max(10, rect.height() // 2 - self.overlay.height()))
        self.keys_overlay.adjustSize()
        self.keys_overlay.move(max(0, (rect.width() - self.keys_overlay.width()) // 2), 12)

    def _show_overlay(self, text: str, busy: bool = False) -> None:
        self.overlay_text.setText(text)
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.progress.setRange(0, 0)
        self.overlay.show()
        self.overlay.raise_()
        self._place_overlays()

    def _hide_overlay(self) -> None:
        self.overlay.hide()

    @property
    def overlay_message(self) -> str | None:
        return self.overlay_text.text() if self.overlay.isVisible() else None

    def toggle_keys_help(self) -> None:
        self.keys_overlay.setVisible(not self.keys_overlay.isVisible())
        self.keys_overlay.raise_()
        self._place_overlays()

    def showEvent(self, event):
        super().showEvent(event)
        # Hosted in a window that shows our messages in its status bar: one place for them is enough.
        hosted = self.isSignalConnected(QMetaMethod.fromSignal(self.statusMessage))
        self.status.setVisible(not hosted)

    def refresh(self) -> None:
        """Re-read the open recording's cycles (after something outside this view changed them)."""
        if self.current_recording_id is not None:
            self._reload_cycles()

    def _status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setToolTip(text)
        self.statusMessage.emit(text)

    def _update_title(self) -> None:
        rec = self.recording
        if rec is None:
            self.title.setText("<b>Listen</b> \u2014 no recording open")
            return
        parts = [f"<b>{rec['name']}</b>"]
        info = []
        if rec.get("duration"):
            info.append(f"{rec['duration']:.2f} s")
        if rec.get("sample_rate"):
            info.append(f"{rec['sample_rate']} Hz")
        for key in ("device", "chest_location", "split"):
            if rec.get(key):
                info.append(str(rec[key]))
        if rec.get("patient_id"):
            info.append(f"patient {rec['patient_id']}")
        counts = [sum(1 for c in self.cycles if c["label"] == i) for i in range(4)]
        info.append(
            f"{len(self.cycles)} cycles ("
            + ", ".join(f"<span style='color:{label_qcolor(i).name()}'>{counts[i]} {LABELS[i]}</span>" for i in range(4))
            + ")"
        )
        if self.audio_error:
            info.append("<span style='color:#e53935'>audio missing</span>")
        elif self.loading:
            info.append("loading\u2026")
        self.title.setText(" \u00b7 ".join(parts + info))

    def _on_stack_changed(self, index: int) -> None:
        previous, self._stack_index = self._stack_index, index
        try:
            self._update_actions()
            if self._pushing or index == previous:
                return
            command = self._stack.command(index if index < previous else index - 1)
            if command is not None:  # None: the stack was cleared
                self._status(f"{'Undone' if index < previous else 'Redone'}: {command.text()}")
        except RuntimeError:  # the stack clears itself while the view is being destroyed
            pass

    def _update_actions(self) -> None:
        has_rec = self.current_recording_id is not None
        has_cycle = self.current_cycle_id is not None
        for action in self.label_actions:
            action.setEnabled(has_cycle)
        self.act_delete.setEnabled(has_cycle)
        self.act_add.setEnabled(has_rec and self.selection is not None)
        self.act_split.setEnabled(has_rec)
        self.act_export.setEnabled(has_rec)
        self.act_import.setEnabled(has_rec)
        self.act_play.setEnabled(self.wave is not None)
        self.act_undo.setEnabled(self._stack.canUndo())
        self.act_redo.setEnabled(self._stack.canRedo())
        self.act_undo.setToolTip(f"Undo {self._stack.undoText()} (Ctrl+Z)" if self._stack.canUndo() else "Nothing to undo (Ctrl+Z)")
        self.act_redo.setToolTip(f"Redo {self._stack.redoText()} (Ctrl+Shift+Z)" if self._stack.canRedo() else "Nothing to redo (Ctrl+Shift+Z)")

    # == loading ====================================================================================
    def _span_end(self) -> float:
        rec = self.recording or {}
        ends = [c["end"] for c in self.cycles]
        return max([rec.get("duration") or 0.0] + ends + [1.0])

    def _set_time_span(self, end: float) -> None:
        for plot in (self.wave_plot, self.spec_plot, self.track_plot):
            plot.getViewBox().setLimits(xMin=0.0, xMax=end, minXRange=0.005)
        self.wave_plot.setXRange(0.0, end, padding=0)

    def _hide_detail(self) -> None:
        if self._detail_task is not None:
            self._detail_task.cancel()
            self._detail_task = None
        self.detail = None
        self.detail_image.hide()

    def _update_detail(self) -> None:
        """Compute a finer spectrogram of the visible span when the overview is too coarse for this zoom."""
        spec, wave = self.spectrogram, self.wave
        if spec is None or wave is None or self._audio_key is None:
            return
        vb = self.wave_plot.getViewBox()
        (x0, x1), _ = vb.viewRange()
        pixels = max(100.0, vb.width())
        natural = self.spec_settings.window * 0.25 / self.rate  # the finest hop worth computing
        wanted = max(natural, (x1 - x0) / (2.0 * pixels))
        if spec.hop <= wanted * 1.5:
            self._hide_detail()
            return
        if self.detail is not None and self.detail.t0 <= x0 and self.detail.t1 >= x1 and self.detail.hop <= wanted * 1.5:
            return  # what is shown already covers this view finely enough
        margin = (x1 - x0) * 0.25
        start, end = max(0.0, x0 - margin), min(len(wave) / self.rate, x1 + margin)
        columns = int(min(8192, max(64, (end - start) / wanted)))
        settings, rate, rid = self.spec_settings, self.rate, self.current_recording_id
        if self._detail_task is not None:
            self._detail_task.cancel()
        if Task is None:
            self._show_detail(compute_spectrogram(wave, rate, settings, start, end, columns))
            return

        def compute(progress):
            return compute_spectrogram(wave, rate, settings, start, end, columns, progress=progress)

        task = Task(compute, name="detail spectrogram")
        task.signals.finished.connect(
            lambda result, t=task: self._detail_task is t and rid == self.current_recording_id
            and settings == self.spec_settings and self._show_detail(result)
        )
        self._detail_task = task
        start_task(task)

    def _show_detail(self, detail: Spectrogram) -> None:
        self._detail_task = None
        self.detail = detail
        levels = self.spectrogram.levels(self.spec_settings.dynamic_range) if self.spectrogram else detail.levels(70)
        self.detail_image.setImage(detail.db, autoLevels=False, levels=levels)
        self.detail_image.setRect(QRectF(detail.t0 - detail.hop / 2, 0.0, detail.hop * detail.db.shape[0], detail.f_max))
        self.detail_image.show()

    def _clear_audio(self) -> None:
        self._hide_detail()
        self.wave = None
        self.rate = None
        self.spectrogram = None
        self.audio_error = None
        self._audio_key = None
        self.loading = False
        self.curve.setData([], [])
        self.image.clear()
        self.spec_plot.getViewBox().setLimits(yMin=0, yMax=self.spec_settings.max_freq)
        self.spec_plot.setYRange(0, self.spec_settings.max_freq, padding=0)
        self.player.set_audio(None, 1)

    def _cancel_tasks(self) -> None:
        for task in (self._task, self._spec_task):
            if task is not None:
                task.cancel()
        self._task = None
        self._spec_task = None

    def _audio_source(self) -> tuple[Path | None, str | None]:
        """(path, None) when the audio can be read, else (path or None, a message saying what is wrong)."""
        rec = self.recording
        path = self.project.audio_path(rec)
        if path is None:
            return None, f"{rec['name']}: the project has no audio file for this recording."
        if not path.exists():
            return path, (
                f"Audio not found: {path}\nThe cycles can still be edited. To listen, point the project at the "
                "file: in the Library, right-click the recording \u2192 Locate audio file\u2026"
            )
        if rec.get("audio_status") in ("changed", "unreadable"):
            return path, f"{path}: the audio is marked {rec['audio_status']}; relocate or re-import it to listen."
        return path, None

    def _start_loading(self) -> None:
        rec = self.recording
        path, problem = self._audio_source()
        if problem:
            self.audio_error = problem
            self._show_overlay(problem)
            self._status(problem.splitlines()[0])
            self._update_title()
            self._update_actions()
            return
        key = (str(path), rec.get("sha256") or rec.get("size_bytes"))
        self._audio_key = key
        cached = self._audio_cache.get(key)
        if cached is not None:
            self._audio_cache.move_to_end(key)
            spec = CACHE.get(key + self.spec_settings.compute_key())
            if spec is not None:
                self._on_loaded({"wave": cached[0], "rate": cached[1], "spec": spec, "key": key}, self.current_recording_id)
                return
        self.loading = True
        self._show_overlay(f"Loading {rec['name']}\u2026", busy=True)
        self._update_title()
        rid = self.current_recording_id
        if Task is None:  # no workers module: load here (blocks, but only for the current file)
            try:
                self._on_loaded(load_audio_task(path, key, self.spec_settings, lambda *a: None), rid)
            except AudioError as exc:
                self._on_load_failed(exc, "", rid)
            return
        task = Task(load_audio_task, path, key, self.spec_settings, name=f"open {rec['name']}")
        task.signals.progress.connect(self._on_load_progress)
        task.signals.finished.connect(lambda result, t=task: self._task is t and self._on_loaded(result, rid))
        task.signals.failed.connect(lambda exc, text, t=task: self._task is t and self._on_load_failed(exc, text, rid))
        task.signals.cancelled.connect(lambda t=task: self._task is t and self._on_load_cancelled(rid))
        self._task = task
        start_task(task)

    def cancel_loading(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._spec_task is not None:
            self._spec_task.cancel()

    def _on_load_progress(self, done: int, total: int, message: str) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))

    def _on_load_cancelled(self, rid) -> None:
        self._task = None
        self.loading = False
        if rid != self.current_recording_id:
            return
        self._show_overlay("Loading cancelled. The cycles can still be edited; open the recording again to listen.")
        self._status("Loading cancelled")
        self._update_title()

    def _on_load_failed(self, exc, text, rid) -> None:
        self._task = None
        self.loading = False
        if rid != self.current_recording_id:
            return
        message = str(exc) if isinstance(exc, AudioError) else f"Cannot open the audio: {exc}"
        self.audio_error = message
        self._show_overlay(message + "\nThe cycles can still be edited.")
        self._status(message)
        self._update_title()

    def _on_loaded(self, result: dict, rid) -> None:
        self._task = None
        self.loading = False
        if rid != self.current_recording_id:
            return
        self.wave, self.rate = result["wave"], result["rate"]
        self._audio_cache[result["key"]] = (self.wave, self.rate)
        while len(self._audio_cache) > AUDIO_CACHE_SIZE:
            self._audio_cache.popitem(last=False)
        self.player.set_audio(self.wave, self.rate)
        duration = len(self.wave) / self.rate
        self._set_time_span(max(duration, self._span_end()))
        x = np.arange(len(self.wave), dtype=np.float64) / self.rate
        self.curve.setData(x, self.wave)
        peak = float(np.max(np.abs(self.wave))) if len(self.wave) else 1.0
        peak = peak if peak > 1e-6 else 1.0
        self.wave_plot.setYRange(-peak, peak, padding=0.05)
        self._hide_overlay()
        self._show_spectrogram(result["spec"])
        self.track.set_cycles(self.cycles, duration, self.current_cycle_id)  # the last edge may now reach the end
        if self._pending_cycle is not None and self.current_cycle_id == self._pending_cycle:
            self._zoom_to_cycle(self._pending_cycle)
        self._pending_cycle = None
        self._update_title()
        self._update_actions()
        if not self.player.available and self.player.unavailable_reason:
            self._status(f"No playback: {self.player.unavailable_reason}")
        else:
            self._status(f"{self.recording['name']}: {duration:.2f} s at {self.rate} Hz")
        self.audioLoaded.emit(rid)

    def _show_spectrogram(self, spec: Spectrogram) -> None:
        self._hide_detail()
        self.spectrogram = spec
        settings = self.spec_settings
        self.image.announce = True
        self.image.setImage(spec.db, autoLevels=False, levels=spec.levels(settings.dynamic_range))
        self.image.setRect(QRectF(spec.t0 - spec.hop / 2, 0.0, spec.hop * spec.db.shape[0], spec.f_max))
        self.spec_plot.setYRange(0, spec.f_max, padding=0)
        self.spec_plot.getViewBox().setLimits(yMin=0, yMax=spec.f_max)
        self._detail_timer.start()

    def _on_image_painted(self) -> None:
        if self.current_recording_id is not None:
            self.spectrogramDrawn.emit(self.current_recording_id)

    # == spectrogram settings and presets =============================================================
    def _load_current_settings(self) -> SpectrogramSettings:
        raw = self._store.value(CURRENT_KEY)
        if raw:
            try:
                return SpectrogramSettings.from_dict(json.loads(raw))
            except (TypeError, ValueError):
                pass
        return BUILTIN_PRESETS["Lung sounds"]

    def presets(self) -> dict[str, SpectrogramSettings]:
        """Built-in presets, then the user's (a user preset may replace a built-in of the same name)."""
        out = dict(BUILTIN_PRESETS)
        raw = self._store.value(PRESETS_KEY)
        if raw:
            try:
                for name, data in json.loads(raw).items():
                    out[name] = SpectrogramSettings.from_dict(data)
            except (TypeError, ValueError, AttributeError):
                pass
        return out

    def _user_presets(self) -> dict:
        raw = self._store.value(PRESETS_KEY)
        try:
            return dict(json.loads(raw)) if raw else {}
        except (TypeError, ValueError):
            return {}

    def save_preset(self, name: str, settings: SpectrogramSettings | None = None) -> None:
        name = name.strip()
        if not name:
            return
        presets = self._user_presets()
        presets[name] = json.loads((settings or self.spec_settings).to_json())
        self._store.setValue(PRESETS_KEY, json.dumps(presets))
        self._store.sync()
        self._refresh_presets(select=name)
        self._status(f"Saved spectrogram preset '{name}'")

    def remove_preset(self, name: str) -> bool:
        presets = self._user_presets()
        if name not in presets:
            return False
        del presets[name]
        self._store.setValue(PRESETS_KEY, json.dumps(presets))
        self._store.sync()
        self._refresh_presets()
        return True

    def remove_current_preset(self) -> None:
        name = self.preset_box.currentData()
        if name and not self.remove_preset(name):
            self._status(f"'{name}' is built in and stays")

    def save_preset_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "Save spectrogram preset", "Preset name:")
        if ok and name.strip():
            self.save_preset(name)

    def _refresh_presets(self, select: str | None = None) -> None:
        self.preset_box.blockSignals(True)
        self.preset_box.clear()
        presets = self.presets()
        user = self._user_presets()
        for name, settings in presets.items():
            label = name if name in user else f"{name} (built in)"
            self.preset_box.addItem(label, name)
        match = select or next((name for name, s in presets.items() if s == self.spec_settings), None)
        if match is None:
            self.preset_box.insertItem(0, "(custom)", None)
            self.preset_box.setCurrentIndex(0)
        else:
            self.preset_box.setCurrentIndex(max(0, self.preset_box.findData(match)))
        self.preset_box.blockSignals(False)

    def _show_settings(self, settings: SpectrogramSettings) -> None:
        for widget in (self.window_box, self.maxfreq_box, self.range_box, self.cmap_box):
            widget.blockSignals(True)
        self.window_box.setCurrentIndex(max(0, self.window_box.findData(settings.window)))
        self.maxfreq_box.setValue(int(settings.max_freq))
        self.range_box.setValue(settings.dynamic_range)
        self.cmap_box.setCurrentIndex(max(0, self.cmap_box.findText(settings.colormap)))
        for widget in (self.window_box, self.maxfreq_box, self.range_box, self.cmap_box):
            widget.blockSignals(False)

    def _on_preset_chosen(self, index: int) -> None:
        name = self.preset_box.itemData(index)
        if name:
            self.apply_spectrogram_settings(self.presets()[name])

    def _on_settings_edited(self, *_):
        self.apply_spectrogram_settings(
            SpectrogramSettings(
                window=int(self.window_box.currentData()),
                max_freq=float(self.maxfreq_box.value()),
                dynamic_range=float(self.range_box.value()),
                colormap=self.cmap_box.currentText(),
            )
        )

    def apply_spectrogram_settings(self, settings: SpectrogramSettings) -> None:
        """Show the spectrogram with these settings (recomputed off the GUI thread only when the STFT changes)."""
        old = self.spec_settings
        self.spec_settings = settings
        self._store.setValue(CURRENT_KEY, settings.to_json())
        self._show_settings(settings)
        self._refresh_presets()
        if settings.colormap != old.colormap:
            self.image.setLookupTable(lookup_table(settings.colormap))
            self.detail_image.setLookupTable(lookup_table(settings.colormap))
        if self.spectrogram is not None and settings.dynamic_range != old.dynamic_range:
            self.image.setLevels(self.spectrogram.levels(settings.dynamic_range))
            if self.detail is not None:
                self.detail_image.setLevels(self.spectrogram.levels(settings.dynamic_range))
        if settings.compute_key() == old.compute_key() or self.wave is None or self._audio_key is None:
            return
        cached = CACHE.get(self._audio_key + settings.compute_key())
        if cached is not None:
            self._show_spectrogram(cached)
            return
        if self._spec_task is not None:
            self._spec_task.cancel()
        rid = self.current_recording_id
        wave, rate, key = self.wave, self.rate, self._audio_key
        if Task is None:
            self._show_spectrogram(spectrogram_task(wave, rate, key, settings, lambda *a: None))
            return
        task = Task(spectrogram_task, wave, rate, key, settings, name="spectrogram")
        task.signals.finished.connect(
            lambda spec, t=task: self._spec_task is t and rid == self.current_recording_id and self._on_spec_ready(spec)
        )
        task.signals.failed.connect(lambda exc, text: self._status(f"Spectrogram failed: {exc}"))
        self._spec_task = task
        start_task(task)

    def _on_spec_ready(self, spec) -> None:
        self._spec_task = None
        self._show_spectrogram(spec)

    # == cycles ======================================================================================
    def _reload_cycles(self) -> None:
        if self.project is None or self.current_recording_id is None:
            self.cycles = []
        else:
            self.cycles = self.project.cycles(recording_id=self.current_recording_id)
            self.recording = self.project.recording(self.current_recording_id)
        if self.current_cycle_id is not None and not any(c["id"] == self.current_cycle_id for c in self.cycles):
            self.current_cycle_id = None
        duration = len(self.wave) / self.rate if self.wave is not None else (self.recording or {}).get("duration")
        self.track.set_cycles(self.cycles, duration, self.current_cycle_id)
        self.panel.set_cycles(self.cycles, self.current_cycle_id)
        self._update_history()
        self._update_cycle_marks()
        self._update_title()
        self._update_actions()

    def _on_project_changed(self, recording_ids, reveal: bool = False) -> None:
        """Called by every command after it wrote to the project (edit, undo or redo)."""
        if self.current_recording_id in recording_ids:
            self._reload_cycles()
        elif reveal and recording_ids and self.project is not None:
            # Undo/redo of an edit made on another recording: show it rather than change it out of sight.
            self.open_recording(recording_ids[0])
        for rid in recording_ids:
            self.cyclesChanged.emit(rid)

    def _run(self, command: commands.CycleCommand) -> bool:
        try:
            command.execute()
        except (ProjectError, LabelError) as exc:
            self._status(str(exc))
            return False
        self._pushing = True
        try:
            self._stack.push(command)
        finally:
            self._pushing = False
        self._status(command.text())
        return True

    def cycle(self, cycle_id: int | None) -> dict | None:
        return next((c for c in self.cycles if c["id"] == cycle_id), None)

    def select_cycle(self, cycle_id: int | None, play: bool = False, ensure_visible: bool = True) -> None:
        cycle = self.cycle(cycle_id)
        self.current_cycle_id = cycle["id"] if cycle else None
        self.track.select(self.current_cycle_id)
        self.panel.select(self.current_cycle_id)
        self._update_history()
        self._update_cycle_marks()
        self._update_actions()
        if cycle is None:
            return
        self._status(
            f"Cycle {cycle['id']}: {LABELS[cycle['label']]}, {cycle['start']:.3f}-{cycle['end']:.3f} s"
            f" ({cycle['end'] - cycle['start']:.2f} s, {cycle['origin']})"
        )
        if ensure_visible:
            (x0, x1), _ = self.wave_plot.getViewBox().viewRange()
            if cycle["start"] < x0 or cycle["end"] > x1:
                width = x1 - x0
                if cycle["end"] - cycle["start"] > width * 0.9:
                    self._zoom_to_cycle(cycle["id"])
                else:
                    centre = (cycle["start"] + cycle["end"]) / 2
                    self.wave_plot.setXRange(centre - width / 2, centre + width / 2, padding=0)
        if not self.player.is_playing:
            self.player.seek(cycle["start"])
        if play:
            self.play_cycle(cycle["id"])

    def _on_row_activated(self, cycle_id: int) -> None:
        self.select_cycle(cycle_id)

    def _update_history(self) -> None:
        if self.project is None or self.current_recording_id is None:
            self.panel.set_history([], "History")
        elif self.current_cycle_id is not None:
            rows = self.project.cycle_history(cycle_id=self.current_cycle_id)
            self.panel.set_history(rows, f"History of cycle {self.current_cycle_id}")
        else:
            rows = self.project.cycle_history(recording_id=self.current_recording_id)
            self.panel.set_history(rows, "History of this recording", per_cycle=False)

    def _zoom_to_cycle(self, cycle_id: int) -> None:
        cycle = self.cycle(cycle_id)
        if cycle:
            pad = max(0.5, (cycle["end"] - cycle["start"]) * 0.5)
            self.wave_plot.setXRange(max(0.0, cycle["start"] - pad), cycle["end"] + pad, padding=0)

    def _update_cycle_marks(self) -> None:
        cycle = self.cycle(self.current_cycle_id)
        for line, value in zip(self.cycle_marks, (cycle["start"], cycle["end"]) if cycle else (None, None)):
            if value is None:
                line.hide()
            else:
                line.setValue(value)
                line.show()

    def relabel(self, label: int) -> bool:
        cycle = self.cycle(self.current_cycle_id)
        if cycle is None:
            self._status("Select a cycle first (click it, or N / P)")
            return False
        if cycle["label"] == label:
            self._status(f"Cycle {cycle['id']} is already {LABELS[label]}")
            return False
        return self._run(commands.Relabel(self.project, cycle["id"], label, self._on_project_changed, self._status))

    def move_boundary(self, cycle_id: int, start: float, end: float) -> bool:
        return self._run(commands.MoveBoundary(self.project, cycle_id, start, end, self._on_project_changed, self._status))

    def _on_boundary_moved(self, cycle_id: int, start: float, end: float) -> None:
        if not self.move_boundary(cycle_id, start, end):
            self._reload_cycles()  # put the dragged edge back where the project has it

    def add_cycle(self, start: float, end: float, label: int = 0) -> int | None:
        if self.current_recording_id is None:
            return None
        command = commands.AddCycle(self.project, self.current_recording_id, start, end, label, self._on_project_changed, self._status)
        if not self._run(command):
            return None
        self.select_cycle(command.cycle_id, ensure_visible=False)
        return command.cycle_id

    def add_cycle_over_selection(self) -> int | None:
        """Ctrl+B: a new (normal) cycle over the time selection, clipped to the gap it starts in."""
        if self.selection is None:
            self._status("Drag in the waveform or spectrogram to select a span, then Ctrl+B adds a cycle there")
            return None
        start, end = self.selection
        gap = self.track.free_gap(start)
        if gap is None:
            inside = self.track.cycle_at(start)
            self._status(f"The selection starts inside cycle {inside['id']}; cycles may not overlap")
            return None
        clipped = (max(start, gap[0]), min(end, gap[1]))
        if clipped[1] - clipped[0] < MIN_CYCLE:
            self._status("The selection is too short for a cycle")
            return None
        cycle_id = self.add_cycle(*clipped)
        if cycle_id is not None:
            self.set_selection(None)
            if clipped != (start, end):
                self._status(f"Added cycle {cycle_id} at {clipped[0]:.3f}-{clipped[1]:.3f} s (clipped to the free gap)")
        return cycle_id

    def split_at_playhead(self) -> bool:
        at = self.player.position
        cycle = self.track.cycle_at(at)
        if cycle is None:
            self._status(f"No cycle under the playhead at {at:.3f} s to split")
            return False
        if at - cycle["start"] < MIN_CYCLE or cycle["end"] - at < MIN_CYCLE:
            self._status("The playhead is too close to the cycle's edge to split there")
            return False
        return self._run(commands.SplitCycle(self.project, cycle["id"], at, self._on_project_changed, self._status))

    def delete_selected(self) -> bool:
        cycle = self.cycle(self.current_cycle_id)
        if cycle is None:
            self._status("Select a cycle to delete")
            return False
        following = self.track.neighbour(cycle["id"], 1) or self.track.neighbour(cycle["id"], -1)
        if not self._run(commands.DeleteCycle(self.project, cycle["id"], self._on_project_changed, self._status)):
            return False
        self.select_cycle(following["id"] if following else None, ensure_visible=False)
        return True

    def step_cycle(self, step: int) -> None:
        target = self.track.neighbour(self.current_cycle_id, step, self.player.position)
        if target is None:
            self._status("No more cycles" if self.cycles else "This recording has no cycles")
            return
        if self.player.is_playing:
            self.player.stop()
        self.select_cycle(target["id"], play=self.act_autoplay.isChecked())

    # == selection, playhead, zoom ========================================================================
    def set_selection(self, span: tuple[float, float] | None) -> None:
        if span is not None and span[1] - span[0] < 1e-3:
            span = None
        self.selection = span
        self._update_selection_items()
        self._update_actions()

    def _update_selection_items(self) -> None:
        for region in self.selection_items:
            if self.selection is None:
                region.hide()
            else:
                region.setRegion(self.selection)
                region.show()

    def _on_selecting(self, start: float, end: float, finished: bool) -> None:
        start, end = max(0.0, start), max(0.0, end)
        self.set_selection((start, end))
        if finished and self.selection:
            self._status(f"Selected {start:.3f}-{end:.3f} s ({end - start:.3f} s): Space plays it, Ctrl+B adds a cycle")
        self.graphics.setFocus()

    def _on_plot_clicked(self, seconds: float, modifiers) -> None:
        self.graphics.setFocus()
        self.set_selection(None)
        if self.sender() is self.track_plot.getViewBox():
            self.select_cycle(None)
        self.player.seek(max(0.0, seconds))

    def _on_position(self, seconds: float) -> None:
        for line in self.playheads:
            line.setValue(seconds)
        total = self.player.duration or (self.recording or {}).get("duration") or 0.0
        self.position_label.setText(f"{_format_time(seconds)} / {_format_time(total)}")
        if self.player.is_playing and self._follow:
            vb = self.wave_plot.getViewBox()
            (x0, x1), _ = vb.viewRange()
            if seconds > x1 or seconds < x0:
                width = x1 - x0
                vb.setXRange(seconds - width * 0.05, seconds + width * 0.95, padding=0)

    def _on_play_state(self, playing: bool) -> None:
        self.act_play.setText("\u275a\u275a Pause" if playing else "\u25b6 Play")

    def zoom(self, factor: float) -> None:
        vb = self.wave_plot.getViewBox()
        centre = self.player.position if self.player.position else None
        (x0, x1), _ = vb.viewRange()
        if centre is None or not x0 <= centre <= x1:
            centre = None
        vb.zoom_x(factor, centre)

    def zoom_all(self) -> None:
        self.wave_plot.setXRange(0.0, self._span_end() if self.wave is None else max(self._span_end(), len(self.wave) / self.rate), padding=0)

    def scroll(self, fraction: float) -> None:
        self.wave_plot.getViewBox().scroll_x(fraction)

    def visible_range(self) -> tuple[float, float]:
        (x0, x1), _ = self.wave_plot.getViewBox().viewRange()
        return x0, x1

    # == playback ==========================================================================================
    def _apply_player_prefs(self) -> None:
        loop = self._store.value("listen/loop", False, type=bool)
        autoplay = self._store.value("listen/autoplay", False, type=bool)
        speed = self._store.value("listen/speed", 1.0, type=float)
        self.act_loop.setChecked(loop)
        self.act_autoplay.setChecked(autoplay)
        index = self.speed_box.findData(speed)
        self.speed_box.setCurrentIndex(index if index >= 0 else self.speed_box.findData(1.0))
        self.player.set_loop(loop)

    def _on_loop_toggled(self, on: bool) -> None:
        self.player.set_loop(on)
        self._store.setValue("listen/loop", bool(on))
        self._status("Loop on" if on else "Loop off")

    def _on_autoplay_toggled(self, on: bool) -> None:
        self._store.setValue("listen/autoplay", bool(on))

    def _on_speed_changed(self, index: int) -> None:
        speed = float(self.speed_box.itemData(index) or 1.0)
        self.player.set_speed(speed)
        self._store.setValue("listen/speed", speed)

    def _play_span(self, start: float, end: float) -> bool:
        if self.wave is None:
            self._status(self.audio_error or "The audio is still loading")
            return False
        # Resume a paused span from the playhead; otherwise start at its beginning.
        position = self.player.position
        if self.player.span == (start, end) and start < position < end - 1e-3:
            start_at = position
        else:
            start_at = start
        ok = self.player.play(start_at, end, keep_span=(start, end))
        if ok:
            self._status(f"Playing {start:.3f}-{end:.3f} s" + (" (loop)" if self.player.loop else ""))
        return ok

    def play_cycle(self, cycle_id: int | None = None) -> bool:
        cycle = self.cycle(cycle_id if cycle_id is not None else self.current_cycle_id)
        if cycle is None:
            return False
        return self._play_span(cycle["start"], cycle["end"])

    def play_selection(self) -> bool:
        return self.selection is not None and self._play_span(*self.selection)

    def play_pause(self) -> bool:
        """Space: pause when playing; else play the selection, the selected cycle, or from the playhead."""
        if self.player.is_playing:
            self.player.stop()
            return False
        if self.selection is not None:
            return self.play_selection()
        if self.current_cycle_id is not None:
            return self.play_cycle()
        if self.wave is None:
            self._status(self.audio_error or "The audio is still loading")
            return False
        return self.player.play()

    def stop(self) -> None:
        self.player.stop()

    # == labels in and out ===================================================================================
    def export_labels(self, path, fmt: str | None = None) -> bool:
        if self.project is None or self.current_recording_id is None:
            return False
        try:
            out = export_labels(self.project, path, fmt, [self.current_recording_id])
        except (OSError, ValueError) as exc:
            self._status(f"Export failed: {exc}")
            return False
        self._status(f"Exported {len(self.cycles)} cycles to {out}")
        return True

    def import_labels(self, path, fmt: str | None = None, mode: str = "replace") -> bool:
        """Apply a label file to the open recording (a CSV may name others) as one undoable step."""
        if self.project is None or self.current_recording_id is None:
            return False
        command = commands.ImportLabels(self.project, path, self.current_recording_id, fmt, mode, self._on_project_changed, self._status)
        if not self._run(command):
            return False
        self._status(f"Imported {Path(path).name}: {command.summary()}")
        return True

    def export_dialog(self) -> None:
        if self.recording is None:
            return
        filters = [FORMAT_NAMES[f] for f in FORMATS]
        default = str(Path.home() / f"{self.recording['name']}.txt")
        path, chosen = QFileDialog.getSaveFileName(self, "Export cycle labels", default, ";;".join(filters))
        if not path:
            return
        fmt = FORMATS[filters.index(chosen)] if chosen in filters else None
        if fmt and not Path(path).suffix:
            path += EXTENSIONS[fmt]
        self.export_labels(path, fmt)

    def import_dialog(self) -> None:
        if self.recording is None:
            return
        filters = "Label files (*.txt *.csv *.TextGrid *.textgrid);;" + ";;".join(FORMAT_NAMES[f] for f in FORMATS)
        path, _ = QFileDialog.getOpenFileName(self, "Import cycle labels", str(Path.home()), filters)
        if not path:
            return
        try:
            fmt = detect_format(path, read_text(path))
        except LabelError as exc:
            QMessageBox.warning(self, "Import labels", str(exc))
            return
        box = QMessageBox(self)
        box.setWindowTitle("Import labels")
        box.setText(
            f"Import {Path(path).name} as {FORMAT_NAMES[fmt]} into {self.recording['name']}?\n\n"
            "Replace: the recording's current cycles are deleted (kept in the history) and the file's cycles added.\n"
            "Merge: the file's cycles are added; a cycle with the same span is relabelled."
        )
        replace = box.addButton("Replace", QMessageBox.AcceptRole)
        merge = box.addButton("Merge", QMessageBox.AcceptRole)
        box.addButton(QMessageBox.Cancel)
        box.exec()
        clicked = box.clickedButton()
        if clicked not in (replace, merge):
            return
        if not self.import_labels(path, fmt, "replace" if clicked is replace else "merge"):
            QMessageBox.warning(self, "Import labels", self.status.text() + "\n\nNothing was changed.")

    # == keys ===============================================================================================
    def eventFilter(self, obj, event):
        if event.type() == QEvent.ShortcutOverride and self._handles(event):
            event.accept()  # window-wide shortcuts (another area's Delete, say) must not take our keys
            return True
        if event.type() == QEvent.KeyPress and self._handles(event):
            self._key(event)
            return True
        return super().eventFilter(obj, event)

    def keyPressEvent(self, event):
        if self._handles(event):
            self._key(event)
            return
        super().keyPressEvent(event)

    def _handles(self, event) -> bool:
        return self._key_action(event) is not None

    def _key_action(self, event):
        key = event.key()
        mods = event.modifiers() & (Qt.ControlModifier | Qt.ShiftModifier | Qt.AltModifier | Qt.MetaModifier)
        ctrl = bool(mods & (Qt.ControlModifier | Qt.MetaModifier))
        shift = bool(mods & Qt.ShiftModifier)
        if ctrl:
            if key == Qt.Key_Z:
                return self._stack.redo if shift else self._stack.undo
            if key == Qt.Key_Y:
                return self._stack.redo
            if key == Qt.Key_B:
                return self.add_cycle_over_selection
            if key in (Qt.Key_Plus, Qt.Key_Equal):
                return lambda: self.zoom(1 / 1.5)
            if key == Qt.Key_Minus:
                return lambda: self.zoom(1.5)
            return None
        if mods & Qt.AltModifier:
            return None
        table = {
            Qt.Key_Space: self.play_pause,
            Qt.Key_1: lambda: self.relabel(0),
            Qt.Key_2: lambda: self.relabel(1),
            Qt.Key_3: lambda: self.relabel(2),
            Qt.Key_4: lambda: self.relabel(3),
            Qt.Key_N: lambda: self.step_cycle(1),
            Qt.Key_P: lambda: self.step_cycle(-1),
            Qt.Key_S: self.split_at_playhead,
            Qt.Key_Delete: self.delete_selected,
            Qt.Key_Backspace: self.delete_selected,
            Qt.Key_Plus: lambda: self.zoom(1 / 1.5),
            Qt.Key_Equal: lambda: self.zoom(1 / 1.5),
            Qt.Key_Minus: lambda: self.zoom(1.5),
            Qt.Key_0: self.zoom_all,
            Qt.Key_L: lambda: self.act_loop.toggle(),
            Qt.Key_Home: lambda: self.player.seek(0.0),
            Qt.Key_End: lambda: self.player.seek(self.player.duration),
            Qt.Key_Escape: self._escape,
            Qt.Key_F1: self.toggle_keys_help,
            Qt.Key_Question: self.toggle_keys_help,
        }
        if key in (Qt.Key_Left, Qt.Key_Right):
            step = -1 if key == Qt.Key_Left else 1
            if self.current_cycle_id is not None:
                return lambda: self.step_cycle(step)
            return lambda: self.scroll(0.1 * step)
        return table.get(key)

    def _key(self, event) -> None:
        action = self._key_action(event)
        if action is not None:
            event.accept()
            action()

    def _escape(self) -> None:
        if self.keys_overlay.isVisible():
            self.keys_overlay.hide()
            return
        self.player.stop()
        if self.selection is not None:
            self.set_selection(None)
        else:
            self.select_cycle(None)

    # == teardown ============================================================================================
    def closeEvent(self, event):
        self.player.close()
        self._cancel_tasks()
        super().closeEvent(event)
