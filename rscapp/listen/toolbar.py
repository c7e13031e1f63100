"""Listen's two bars, built onto the view (as Qt Designer's ``setupUi`` does): the toolbar of actions
(play, labels, edit, undo, zoom, label files) and the spectrogram bar (presets and settings)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QSpinBox, QToolBar, QToolButton, QWidget

from trainer.vocab import LABELS

from ..style import qcolor
from . import dialogs
from .keys import ZOOM_IN, ZOOM_OUT
from .player import SPEEDS
from .spectrogram import COLORMAPS, WINDOW_LENGTHS

if TYPE_CHECKING:
    from .view import ListenView


def _action(view: "ListenView", text: str, key: str, slot, checkable=False, tip: str | None = None) -> QAction:
    action = QAction(text, view)
    action.setToolTip(f"{tip or text} ({key})" if key else (tip or text))
    action.setCheckable(checkable)
    (action.toggled if checkable else action.triggered).connect(slot)
    return action


def _label_actions(view: "ListenView", bar: QToolBar) -> None:
    view.label_actions = []
    for index, name in enumerate(LABELS):
        action = _action(view, f"{index + 1} {name}", str(index + 1), lambda _=False, i=index: view.relabel(i),
                         tip=f"Label the selected cycle {name}")
        bar.addAction(action)
        color = qcolor(index).name()
        bar.widgetForAction(action).setStyleSheet(
            f"QToolButton {{ border-left: 4px solid {color}; padding-left: 4px; }}"
            f"QToolButton:checked {{ background: {color}; color: white; }}"
        )
        view.label_actions.append(action)


def build_toolbar(view: "ListenView") -> QToolBar:
    bar = QToolBar()
    bar.setIconSize(QSize(16, 16))
    bar.setToolButtonStyle(Qt.ToolButtonTextOnly)
    view.act_play = _action(view, "\u25b6 Play", "Space", view.play_pause,
                            tip="Play / pause the selection, the selected cycle or from the playhead")
    view.act_stop = _action(view, "\u25a0 Stop", "Esc", view.stop, tip="Stop")
    view.act_loop = _action(view, "Loop", "L", view._on_loop_toggled, checkable=True, tip="Loop playback")
    for action in (view.act_play, view.act_stop, view.act_loop):
        bar.addAction(action)
    view.speed_box = QComboBox()
    for speed in SPEEDS:
        view.speed_box.addItem(f"{speed:g}\u00d7", speed)
    view.speed_box.setToolTip("Playback speed (changes pitch, like a tape)")
    view.speed_box.currentIndexChanged.connect(view._on_speed_changed)
    view.speed_box.setFocusPolicy(Qt.NoFocus)
    bar.addWidget(view.speed_box)
    view.act_autoplay = _action(view, "Auto-play", "", view._on_autoplay_toggled, checkable=True,
                                tip="Play each cycle when moving to it with N/P or the arrows")
    bar.addAction(view.act_autoplay)
    bar.addSeparator()
    _label_actions(view, bar)
    bar.addSeparator()
    view.act_add = _action(view, "Add", "Ctrl+B", view.add_cycle_over_selection, tip="Add a cycle over the time selection")
    view.act_split = _action(view, "Split", "S", view.split_at_playhead, tip="Split the cycle under the playhead")
    view.act_delete = _action(view, "Delete", "Delete", view.delete_selected, tip="Delete the selected cycle")
    for action in (view.act_add, view.act_split, view.act_delete):
        bar.addAction(action)
    bar.addSeparator()
    view.act_undo = _action(view, "Undo", "Ctrl+Z", view.undo_stack().undo)
    view.act_redo = _action(view, "Redo", "Ctrl+Shift+Z", view.undo_stack().redo)
    bar.addAction(view.act_undo)
    bar.addAction(view.act_redo)
    bar.addSeparator()
    view.act_zoom_in = _action(view, "Zoom +", "+", lambda: view.zoom(ZOOM_IN), tip="Zoom in")
    view.act_zoom_out = _action(view, "Zoom \u2212", "-", lambda: view.zoom(ZOOM_OUT), tip="Zoom out")
    view.act_fit = _action(view, "All", "0", view.zoom_all, tip="Show the whole recording")
    for action in (view.act_zoom_in, view.act_zoom_out, view.act_fit):
        bar.addAction(action)
    bar.addSeparator()
    view.act_export = _action(view, "Export\u2026", "", lambda: dialogs.export_dialog(view),
                              tip="Export this recording's cycles (ICBHI, CSV, Audacity, TextGrid)")
    view.act_import = _action(view, "Import\u2026", "", lambda: dialogs.import_dialog(view),
                              tip="Import cycles from ICBHI, CSV, Audacity or TextGrid labels")
    view.act_keys = _action(view, "Keys", "F1", view.toggle_keys_help, tip="Show the keyboard keys")
    view.act_table = QAction("Table", view)
    view.act_table.setToolTip("Show the cycle table and the edit history beside the plots")
    view.act_table.setCheckable(True)
    view.act_table.setChecked(True)  # before connecting: the panel is built after the toolbar
    view.act_table.toggled.connect(lambda on: view.panel.setVisible(on))
    for action in (view.act_export, view.act_import, view.act_table, view.act_keys):
        bar.addAction(action)
    for action in bar.actions():
        widget = bar.widgetForAction(action)
        if widget is not None:
            widget.setFocusPolicy(Qt.NoFocus)
    return bar


def build_spec_bar(view: "ListenView") -> QWidget:
    bar = QWidget()
    row = QHBoxLayout(bar)
    row.setContentsMargins(2, 0, 2, 0)
    row.addWidget(QLabel("Spectrogram:"))
    view.preset_box = QComboBox()
    view.preset_box.setToolTip("Spectrogram presets (saved for every project)")
    view.preset_box.setMinimumWidth(170)
    view.preset_box.activated.connect(view._on_preset_chosen)
    row.addWidget(view.preset_box)
    save = QToolButton()
    save.setText("Save\u2026")
    save.setToolTip("Save the current settings as a named preset")
    save.clicked.connect(lambda: dialogs.save_preset_dialog(view))
    remove = QToolButton()
    remove.setText("Remove")
    remove.setToolTip("Remove the chosen preset (built-in presets stay)")
    remove.clicked.connect(view.remove_current_preset)
    row.addWidget(save)
    row.addWidget(remove)
    row.addSpacing(12)
    row.addWidget(QLabel("Window"))
    view.window_box = QComboBox()
    for n in WINDOW_LENGTHS:
        view.window_box.addItem(f"{n}", n)
    view.window_box.setToolTip("Window length in samples: short for crackles (time), long for wheezes (frequency)")
    row.addWidget(view.window_box)
    row.addWidget(QLabel("Max"))
    view.maxfreq_box = QSpinBox()
    view.maxfreq_box.setRange(100, 48000)
    view.maxfreq_box.setSingleStep(250)
    view.maxfreq_box.setSuffix(" Hz")
    view.maxfreq_box.setToolTip("Highest frequency shown (clipped to half the sample rate)")
    row.addWidget(view.maxfreq_box)
    row.addWidget(QLabel("Range"))
    view.range_box = QDoubleSpinBox()
    view.range_box.setRange(10, 150)
    view.range_box.setDecimals(0)
    view.range_box.setSingleStep(5)
    view.range_box.setSuffix(" dB")
    view.range_box.setToolTip("Dynamic range: how far below the loudest point still gets a colour")
    row.addWidget(view.range_box)
    row.addWidget(QLabel("Colours"))
    view.cmap_box = QComboBox()
    for name in COLORMAPS:
        view.cmap_box.addItem(name)
    row.addWidget(view.cmap_box)
    row.addStretch(1)
    for widget in (view.preset_box, view.window_box, view.maxfreq_box, view.range_box, view.cmap_box, save, remove):
        widget.setFocusPolicy(Qt.ClickFocus)
    view._refresh_presets()
    view._show_settings(view.spec_settings)
    view.window_box.currentIndexChanged.connect(view._on_settings_edited)
    view.maxfreq_box.editingFinished.connect(view._on_settings_edited)
    view.range_box.valueChanged.connect(view._on_settings_edited)
    view.cmap_box.currentIndexChanged.connect(view._on_settings_edited)
    return bar
