"""Listen's time axis: the span shown, zoom and scroll, the time selection, and the finer spectrogram
computed for the visible span when zoomed far into a long recording (Sonic Visualiser does the same per
zoom level)."""

from __future__ import annotations

from PySide6.QtCore import QRectF

from ..workers import Task, start
from .spectrogram import Spectrogram, compute_spectrogram

DETAIL_DELAY_MS = 120  # wait for the zoom/scroll to settle before computing a detail spectrogram
MAX_DETAIL_COLUMNS = 8192


class ZoomMixin:
    # -- span, zoom, scroll -----------------------------------------------------------------------
    def _span_end(self) -> float:
        rec = self.recording or {}
        ends = [c["end"] for c in self.cycles]
        return max([rec.get("duration") or 0.0] + ends + [1.0])

    def _set_time_span(self, end: float) -> None:
        for plot in (self.wave_plot, self.spec_plot, self.track_plot):
            plot.getViewBox().setLimits(xMin=0.0, xMax=end, minXRange=0.005)
        self.wave_plot.setXRange(0.0, end, padding=0)

    def zoom(self, factor: float) -> None:
        vb = self.wave_plot.getViewBox()
        centre = self.player.position if self.player.position else None
        (x0, x1), _ = vb.viewRange()
        if centre is None or not x0 <= centre <= x1:
            centre = None
        vb.zoom_x(factor, centre)

    def zoom_all(self) -> None:
        end = self._span_end() if self.wave is None else max(self._span_end(), len(self.wave) / self.rate)
        self.wave_plot.setXRange(0.0, end, padding=0)

    def scroll(self, fraction: float) -> None:
        self.wave_plot.getViewBox().scroll_x(fraction)

    def visible_range(self) -> tuple[float, float]:
        (x0, x1), _ = self.wave_plot.getViewBox().viewRange()
        return x0, x1

    def _zoom_to_cycle(self, cycle_id: int) -> None:
        cycle = self.cycle(cycle_id)
        if cycle:
            pad = max(0.5, (cycle["end"] - cycle["start"]) * 0.5)
            self.wave_plot.setXRange(max(0.0, cycle["start"] - pad), cycle["end"] + pad, padding=0)

    def _show_cycle(self, cycle: dict) -> None:
        """Scroll (or zoom out) so that the whole cycle is on screen."""
        (x0, x1), _ = self.wave_plot.getViewBox().viewRange()
        if cycle["start"] < x0 or cycle["end"] > x1:
            width = x1 - x0
            if cycle["end"] - cycle["start"] > width * 0.9:
                self._zoom_to_cycle(cycle["id"])
            else:
                centre = (cycle["start"] + cycle["end"]) / 2
                self.wave_plot.setXRange(centre - width / 2, centre + width / 2, padding=0)

    # -- the time selection -------------------------------------------------------------------------
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

    # -- the detail spectrogram ------------------------------------------------------------------------
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
        detail = self.detail
        if detail is not None and detail.t0 <= x0 and detail.t1 >= x1 and detail.hop <= wanted * 1.5:
            return  # what is shown already covers this view finely enough
        margin = (x1 - x0) * 0.25
        start_at, end = max(0.0, x0 - margin), min(len(wave) / self.rate, x1 + margin)
        columns = int(min(MAX_DETAIL_COLUMNS, max(64, (end - start_at) / wanted)))
        settings, rate, rid = self.spec_settings, self.rate, self.current_recording_id
        if self._detail_task is not None:
            self._detail_task.cancel()

        def compute(progress):
            return compute_spectrogram(wave, rate, settings, start_at, end, columns, progress=progress)

        task = Task(compute, name="detail spectrogram")
        task.signals.finished.connect(
            lambda result, t=task: self._detail_task is t and rid == self.current_recording_id
            and settings == self.spec_settings and self._show_detail(result)
        )
        self._detail_task = task
        start(task)

    def _show_detail(self, detail: Spectrogram) -> None:
        self._detail_task = None
        self.detail = detail
        levels = self.spectrogram.levels(self.spec_settings.dynamic_range) if self.spectrogram else detail.levels(70)
        self.detail_image.setImage(detail.db, autoLevels=False, levels=levels)
        self.detail_image.setRect(QRectF(detail.t0 - detail.hop / 2, 0.0, detail.hop * detail.db.shape[0], detail.f_max))
        self.detail_image.show()
