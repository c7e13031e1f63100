"""Listen's key bindings, in one table (napari keeps its viewer's in one file too), and the list the
Keys overlay shows. They work while the focus is anywhere in the view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import Qt

if TYPE_CHECKING:
    from .view import ListenView

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
ZOOM_IN, ZOOM_OUT = 1 / 1.5, 1.5


def _with_ctrl(view: "ListenView", key: int, shift: bool) -> Callable | None:
    stack = view.undo_stack()
    table = {
        Qt.Key_Z: stack.redo if shift else stack.undo,
        Qt.Key_Y: stack.redo,
        Qt.Key_B: view.add_cycle_over_selection,
        Qt.Key_Plus: lambda: view.zoom(ZOOM_IN),
        Qt.Key_Equal: lambda: view.zoom(ZOOM_IN),
        Qt.Key_Minus: lambda: view.zoom(ZOOM_OUT),
    }
    return table.get(key)


def _plain(view: "ListenView", key: int) -> Callable | None:
    if key in (Qt.Key_Left, Qt.Key_Right):
        step = -1 if key == Qt.Key_Left else 1
        if view.current_cycle_id is not None:
            return lambda: view.step_cycle(step)
        return lambda: view.scroll(0.1 * step)
    table = {
        Qt.Key_Space: view.play_pause,
        Qt.Key_1: lambda: view.relabel(0),
        Qt.Key_2: lambda: view.relabel(1),
        Qt.Key_3: lambda: view.relabel(2),
        Qt.Key_4: lambda: view.relabel(3),
        Qt.Key_N: lambda: view.step_cycle(1),
        Qt.Key_P: lambda: view.step_cycle(-1),
        Qt.Key_S: view.split_at_playhead,
        Qt.Key_Delete: view.delete_selected,
        Qt.Key_Backspace: view.delete_selected,
        Qt.Key_Plus: lambda: view.zoom(ZOOM_IN),
        Qt.Key_Equal: lambda: view.zoom(ZOOM_IN),
        Qt.Key_Minus: lambda: view.zoom(ZOOM_OUT),
        Qt.Key_0: view.zoom_all,
        Qt.Key_L: lambda: view.act_loop.toggle(),
        Qt.Key_Home: lambda: view.player.seek(0.0),
        Qt.Key_End: lambda: view.player.seek(view.player.duration),
        Qt.Key_Escape: view.escape,
        Qt.Key_F1: view.toggle_keys_help,
        Qt.Key_Question: view.toggle_keys_help,
    }
    return table.get(key)


def key_action(view: "ListenView", event) -> Callable | None:
    """What a key press does in the view, or None when the view leaves it to others."""
    mods = event.modifiers() & (Qt.ControlModifier | Qt.ShiftModifier | Qt.AltModifier | Qt.MetaModifier)
    if mods & (Qt.ControlModifier | Qt.MetaModifier):
        return _with_ctrl(view, event.key(), bool(mods & Qt.ShiftModifier))
    if mods & Qt.AltModifier:
        return None
    return _plain(view, event.key())
