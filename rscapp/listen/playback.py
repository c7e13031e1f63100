"""Listen's playback: what Space plays, the playhead that follows it, and the player preferences
(loop, auto-play, speed) kept in the app's settings."""

from __future__ import annotations

LOOP_KEY, AUTOPLAY_KEY, SPEED_KEY = "listen/loop", "listen/autoplay", "listen/speed"


def format_time(seconds: float) -> str:
    seconds = max(0.0, seconds)
    minutes = int(seconds // 60)
    return f"{minutes:02d}:{seconds - minutes * 60:06.3f}"


class PlaybackMixin:
    # -- preferences ----------------------------------------------------------------------------
    def _apply_player_prefs(self) -> None:
        loop = self._store.value(LOOP_KEY, False, type=bool)
        autoplay = self._store.value(AUTOPLAY_KEY, False, type=bool)
        speed = self._store.value(SPEED_KEY, 1.0, type=float)
        self.act_loop.setChecked(loop)
        self.act_autoplay.setChecked(autoplay)
        index = self.speed_box.findData(speed)
        self.speed_box.setCurrentIndex(index if index >= 0 else self.speed_box.findData(1.0))
        self.player.set_loop(loop)

    def _on_loop_toggled(self, on: bool) -> None:
        self.player.set_loop(on)
        self._store.setValue(LOOP_KEY, bool(on))
        self._status("Loop on" if on else "Loop off")

    def _on_autoplay_toggled(self, on: bool) -> None:
        self._store.setValue(AUTOPLAY_KEY, bool(on))

    def _on_speed_changed(self, index: int) -> None:
        speed = float(self.speed_box.itemData(index) or 1.0)
        self.player.set_speed(speed)
        self._store.setValue(SPEED_KEY, speed)

    # -- the playhead -----------------------------------------------------------------------------
    def _on_position(self, seconds: float) -> None:
        for line in self.playheads:
            line.setValue(seconds)
        total = self.player.duration or (self.recording or {}).get("duration") or 0.0
        self.position_label.setText(f"{format_time(seconds)} / {format_time(total)}")
        if self.player.is_playing and self._follow:
            vb = self.wave_plot.getViewBox()
            (x0, x1), _ = vb.viewRange()
            if seconds > x1 or seconds < x0:
                width = x1 - x0
                vb.setXRange(seconds - width * 0.05, seconds + width * 0.95, padding=0)

    def _on_play_state(self, playing: bool) -> None:
        self.act_play.setText("\u275a\u275a Pause" if playing else "\u25b6 Play")

    # -- playing -----------------------------------------------------------------------------------
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
