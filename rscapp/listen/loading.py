"""Opening a recording's audio in Listen: samples through ``trainer.audio.read_audio`` and the spectrogram,
both on a pool thread (:mod:`rscapp.workers`), with progress, cancel and the reasons audio cannot be played.

The last few recordings' samples stay in memory (:class:`AudioCache`) and their spectrograms in
:data:`.spectrogram.CACHE`, so going back to a recording just heard shows it at once.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF

from trainer.audio import AudioError, read_audio

from ..workers import Task, start
from .spectrogram import CACHE, Spectrogram, SpectrogramSettings, compute_spectrogram, lookup_table

AUDIO_CACHE_SIZE = 4  # recordings


def load_audio_task(path: Path, key: tuple, settings: SpectrogramSettings, progress) -> dict:
    """Pool-thread work for opening a recording: samples, then the spectrogram (from the cache when there)."""
    progress(0, 2, "Reading audio")
    wave, rate = read_audio(path)
    spec = spectrogram_task(wave, rate, key, settings, progress)
    return {"wave": wave, "rate": rate, "spec": spec, "key": key}


def spectrogram_task(wave, rate, key, settings, progress) -> Spectrogram:
    cache_key = key + settings.compute_key()
    spec = CACHE.get(cache_key)
    if spec is None:
        frames = max(1, len(wave))
        spec = compute_spectrogram(
            wave, rate, settings,
            progress=lambda done, total: progress(frames + done * frames // max(total, 1), frames * 2, "Spectrogram"),
        )
        CACHE.put(cache_key, spec)
    return spec


class AudioCache:
    """Samples and rate of the last few recordings opened, by (path, content hash)."""

    def __init__(self, size: int = AUDIO_CACHE_SIZE):
        self.size = size
        self._items: OrderedDict[tuple, tuple[np.ndarray, int]] = OrderedDict()

    def get(self, key: tuple) -> tuple[np.ndarray, int] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: tuple, wave: np.ndarray, rate: int) -> None:
        self._items[key] = (wave, rate)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


class LoadingMixin:
    """ListenView's audio and spectrogram: loading, cancelling, and recomputing for new settings."""

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
            spec = CACHE.get(key + self.spec_settings.compute_key())
            if spec is not None:
                self._on_loaded({"wave": cached[0], "rate": cached[1], "spec": spec, "key": key}, self.current_recording_id)
                return
        self.loading = True
        self._show_overlay(f"Loading {rec['name']}\u2026", busy=True)
        self._update_title()
        rid = self.current_recording_id
        task = Task(load_audio_task, path, key, self.spec_settings, name=f"open {rec['name']}")
        task.signals.progress.connect(self.overlay.set_progress)
        task.signals.finished.connect(lambda result, t=task: self._task is t and self._on_loaded(result, rid))
        task.signals.failed.connect(lambda exc, text, t=task: self._task is t and self._on_load_failed(exc, rid))
        task.signals.cancelled.connect(lambda t=task: self._task is t and self._on_load_cancelled(rid))
        self._task = task
        start(task)

    def cancel_loading(self) -> None:
        for task in (self._task, self._spec_task):
            if task is not None:
                task.cancel()

    def _cancel_tasks(self) -> None:
        self.cancel_loading()
        self._task = None
        self._spec_task = None

    def _on_load_cancelled(self, rid) -> None:
        self._task = None
        self.loading = False
        if rid != self.current_recording_id:
            return
        self._show_overlay("Loading cancelled. The cycles can still be edited; open the recording again to listen.")
        self._status("Loading cancelled")
        self._update_title()

    def _on_load_failed(self, exc, rid) -> None:
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
        self._audio_cache.put(result["key"], self.wave, self.rate)
        self.player.set_audio(self.wave, self.rate)
        duration = len(self.wave) / self.rate
        self._set_time_span(max(duration, self._span_end()))
        x = np.arange(len(self.wave), dtype=np.float64) / self.rate
        self.curve.setData(x, self.wave)
        peak = float(np.max(np.abs(self.wave))) if len(self.wave) else 1.0
        peak = peak if peak > 1e-6 else 1.0
        self.wave_plot.setYRange(-peak, peak, padding=0.05)
        self.overlay.hide()
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

    # -- the spectrogram ------------------------------------------------------------------------
    def _show_spectrogram(self, spec: Spectrogram) -> None:
        self._hide_detail()
        self.spectrogram = spec
        self.image.announce = True
        self.image.setImage(spec.db, autoLevels=False, levels=spec.levels(self.spec_settings.dynamic_range))
        self.image.setRect(QRectF(spec.t0 - spec.hop / 2, 0.0, spec.hop * spec.db.shape[0], spec.f_max))
        self.spec_plot.setYRange(0, spec.f_max, padding=0)
        self.spec_plot.getViewBox().setLimits(yMin=0, yMax=spec.f_max)
        self._detail_timer.start()

    def _on_image_painted(self) -> None:
        if self.current_recording_id is not None:
            self.spectrogramDrawn.emit(self.current_recording_id)

    def apply_spectrogram_settings(self, settings: SpectrogramSettings) -> None:
        """Show the spectrogram with these settings (recomputed off the GUI thread only when the STFT changes)."""
        old = self.spec_settings
        self.spec_settings = settings
        self.preset_store.set_current(settings)
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
        task = Task(spectrogram_task, self.wave, self.rate, self._audio_key, settings, name="spectrogram")
        task.signals.finished.connect(
            lambda spec, t=task: self._spec_task is t and rid == self.current_recording_id and self._on_spec_ready(spec)
        )
        task.signals.failed.connect(lambda exc, text: self._status(f"Spectrogram failed: {exc}"))
        self._spec_task = task
        start(task)

    def _on_spec_ready(self, spec) -> None:
        self._spec_task = None
        self._show_spectrogram(spec)
