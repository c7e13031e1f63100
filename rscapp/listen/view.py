"""The Listen area: waveform, spectrogram and cycle track on one time axis, playback and label editing.

The view is a window onto the project model: it draws the open recording's cycles and draws them again
whenever the :class:`~rscapp.model.ProjectModel` says they changed, whoever changed them (an edit here,
an undo, the Library, another process). Every edit is a command on the view's QUndoStack that writes
through the model at once (:mod:`.editing`, :mod:`.commands`). Audio is read and the spectrogram computed
on a pool thread (:mod:`.loading`); the cycle track is drawn from the project before the audio arrives,
so labels stay editable when a recording's audio is missing or still loading.

The rest lives in rooms beside this file: the widgets (:mod:`.layout`, :mod:`.toolbar`, :mod:`.overlays`),
the time axis and selection (:mod:`.zoom`), playback (:mod:`.playback`), spectrogram presets
(:mod:`.presets`), dialogs (:mod:`.dialogs`) and the key bindings (:mod:`.keys`, listed by F1 or ?).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QMetaMethod, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QWidget

from trainer.project import ProjectError
from trainer.vocab import LABELS

from ..model import ProjectModel
from ..style import qcolor
from .editing import EditingMixin
from .keys import key_action
from .layout import setup_ui
from .loading import AudioCache, LoadingMixin
from .player import Player
from .playback import PlaybackMixin
from .presets import PresetsMixin, PresetStore, app_settings
from .spectrogram import Spectrogram
from .zoom import ZoomMixin

NO_RECORDING = "Open a recording from the Library to listen to it and edit its cycles."


class ListenView(EditingMixin, LoadingMixin, ZoomMixin, PlaybackMixin, PresetsMixin, QWidget):
    statusMessage = Signal(str)
    audioLoaded = Signal(int)  # recording id; the samples are in and playable
    spectrogramDrawn = Signal(int)  # recording id; a new spectrogram image has been painted

    def __init__(self, model: ProjectModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.current_recording_id: int | None = None
        self.current_cycle_id: int | None = None
        self.recording: dict | None = None
        self.cycles: list[dict] = []
        self.selection: tuple[float, float] | None = None
        self.wave = None
        self.rate: int | None = None
        self.spectrogram: Spectrogram | None = None
        self.detail: Spectrogram | None = None
        self.audio_error: str | None = None
        self.loading = False
        self._task = self._spec_task = self._detail_task = None
        self._audio_key: tuple | None = None
        self._audio_cache = AudioCache()
        self._pending_cycle: int | None = None
        self._follow = True
        self._store = app_settings()
        self.preset_store = PresetStore(self._store)
        self.spec_settings = self.preset_store.current()
        self.player = Player(self)
        self.player.positionChanged.connect(self._on_position)
        self.player.stateChanged.connect(self._on_play_state)
        self.player.error.connect(self._status)
        self._stack = QUndoStack(self)
        self._stack_index = 0
        self._pushing = False
        self._stack.indexChanged.connect(self._on_stack_changed)
        setup_ui(self)
        self._on_position(0.0)
        self._apply_player_prefs()
        model.projectChanged.connect(self._project_changed)
        model.cyclesChanged.connect(self._cycles_changed)
        model.recordingsChanged.connect(self._recordings_changed)
        self._project_changed(model.project)

    @property
    def project(self):
        return self.model.project

    def undo_stack(self) -> QUndoStack:
        return self._stack

    # == following the model =======================================================================
    def _project_changed(self, project) -> None:
        """Another project (or none); the undo history belongs to the project and goes with it."""
        self.player.stop()
        self._cancel_tasks()
        self._stack.clear()
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
        self._show_overlay(NO_RECORDING if project else "No project open.")
        self._update_title()
        self._update_actions()

    def _cycles_changed(self, cycle_ids, recording_ids) -> None:
        if self.current_recording_id in recording_ids:
            self._reload_cycles()

    def _recordings_changed(self, recording_ids) -> None:
        if self.current_recording_id in recording_ids:
            self._reload_cycles()  # its name, split or audio status may be new

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

    # == cycles =========================================================================================
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
            self._show_cycle(cycle)
        if not self.player.is_playing:
            self.player.seek(cycle["start"])
        if play:
            self.play_cycle(cycle["id"])

    def step_cycle(self, step: int) -> None:
        target = self.track.neighbour(self.current_cycle_id, step, self.player.position)
        if target is None:
            self._status("No more cycles" if self.cycles else "This recording has no cycles")
            return
        if self.player.is_playing:
            self.player.stop()
        self.select_cycle(target["id"], play=self.act_autoplay.isChecked())

    def _update_history(self) -> None:
        if self.project is None or self.current_recording_id is None:
            self.panel.set_history([], "History")
        elif self.current_cycle_id is not None:
            rows = self.project.cycle_history(cycle_id=self.current_cycle_id)
            self.panel.set_history(rows, f"History of cycle {self.current_cycle_id}")
        else:
            rows = self.project.cycle_history(recording_id=self.current_recording_id)
            self.panel.set_history(rows, "History of this recording", per_cycle=False)

    def _update_cycle_marks(self) -> None:
        cycle = self.cycle(self.current_cycle_id)
        for line, value in zip(self.cycle_marks, (cycle["start"], cycle["end"]) if cycle else (None, None)):
            if value is None:
                line.hide()
            else:
                line.setValue(value)
                line.show()

    # == undo stack ======================================================================================
    def _on_stack_changed(self, index: int) -> None:
        previous, self._stack_index = self._stack_index, index
        try:
            self._update_actions()
            if self._pushing or index == previous:
                return
            command = self._stack.command(index if index < previous else index - 1)
            if command is None:  # the stack was cleared
                return
            # An undo or redo of an edit made on another recording: show it rather than change it out of sight.
            touched = list(command.recordings())
            if touched and self.current_recording_id not in touched:
                self.open_recording(touched[0])
            self._status(f"{'Undone' if index < previous else 'Redone'}: {command.text()}")
        except RuntimeError:  # the stack clears itself while the view is being destroyed
            pass

    # == overlays, title, status, actions ===================================================================
    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._place_overlays()

    def _place_overlays(self) -> None:
        rect = self.graphics.rect()
        self.overlay.place(rect)
        self.keys_overlay.place(rect)

    def _show_overlay(self, text: str, busy: bool = False) -> None:
        self.overlay.show_message(text, busy)
        self._place_overlays()

    @property
    def overlay_message(self) -> str | None:
        return self.overlay.message

    def toggle_keys_help(self) -> None:
        self.keys_overlay.setVisible(not self.keys_overlay.isVisible())
        self.keys_overlay.raise_()
        self._place_overlays()

    def showEvent(self, event):
        super().showEvent(event)
        # Hosted in a window that shows our messages in its status bar: one place for them is enough.
        hosted = self.isSignalConnected(QMetaMethod.fromSignal(self.statusMessage))
        self.status.setVisible(not hosted)

    def _status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setToolTip(text)
        self.statusMessage.emit(text)

    def _update_title(self) -> None:
        rec = self.recording
        if rec is None:
            self.title.setText("<b>Listen</b> \u2014 no recording open")
            return
        info = []
        if rec.get("duration"):
            info.append(f"{rec['duration']:.2f} s")
        if rec.get("sample_rate"):
            info.append(f"{rec['sample_rate']} Hz")
        info += [str(rec[key]) for key in ("device", "chest_location", "split") if rec.get(key)]
        if rec.get("patient_id"):
            info.append(f"patient {rec['patient_id']}")
        counts = [sum(1 for c in self.cycles if c["label"] == i) for i in range(4)]
        info.append(
            f"{len(self.cycles)} cycles ("
            + ", ".join(f"<span style='color:{qcolor(i).name()}'>{counts[i]} {LABELS[i]}</span>" for i in range(4))
            + ")"
        )
        if self.audio_error:
            info.append("<span style='color:#e53935'>audio missing</span>")
        elif self.loading:
            info.append("loading\u2026")
        self.title.setText(" \u00b7 ".join([f"<b>{rec['name']}</b>", *info]))

    def _update_actions(self) -> None:
        has_rec = self.current_recording_id is not None
        has_cycle = self.current_cycle_id is not None
        for action in self.label_actions:
            action.setEnabled(has_cycle)
        self.act_delete.setEnabled(has_cycle)
        self.act_add.setEnabled(has_rec and self.selection is not None)
        for action in (self.act_split, self.act_export, self.act_import):
            action.setEnabled(has_rec)
        self.act_play.setEnabled(self.wave is not None)
        stack = self._stack
        self.act_undo.setEnabled(stack.canUndo())
        self.act_redo.setEnabled(stack.canRedo())
        self.act_undo.setToolTip(f"Undo {stack.undoText()} (Ctrl+Z)" if stack.canUndo() else "Nothing to undo (Ctrl+Z)")
        self.act_redo.setToolTip(f"Redo {stack.redoText()} (Ctrl+Shift+Z)" if stack.canRedo() else "Nothing to redo (Ctrl+Shift+Z)")

    # == keys ================================================================================================
    def eventFilter(self, obj, event):
        kind = event.type()
        if kind in (QEvent.ShortcutOverride, QEvent.KeyPress) and (action := key_action(self, event)) is not None:
            event.accept()  # window-wide shortcuts (another area's Delete, say) must not take our keys
            if kind == QEvent.KeyPress:
                action()
            return True
        return super().eventFilter(obj, event)

    def keyPressEvent(self, event):
        action = key_action(self, event)
        if action is None:
            super().keyPressEvent(event)
            return
        event.accept()
        action()

    def escape(self) -> None:
        """Esc: close the keys list, else stop and clear the time selection, else the selected cycle."""
        if self.keys_overlay.isVisible():
            self.keys_overlay.hide()
            return
        self.player.stop()
        if self.selection is not None:
            self.set_selection(None)
        else:
            self.select_cycle(None)

    def closeEvent(self, event):
        self.player.close()
        self._cancel_tasks()
        super().closeEvent(event)
