"""Audio playback for the Listen view: a sounddevice output stream fed from a callback.

The playhead follows the wall clock from the moment the stream started (scaled by the speed), not the
number of samples the callback handed over: a real device asks for samples only a buffer ahead, but a
"null" device (machines without a sound card, CI) swallows them as fast as the CPU allows. The
callback also sleeps when it runs far ahead of the clock, so such a device does not spin a core while
a loop plays.

Without PortAudio or an output device nothing raises: :attr:`Player.available` is False, the reason is
in :attr:`Player.unavailable_reason` (and the ``error`` signal), and the rest of the view keeps working.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from trainer.audio import resample

SPEEDS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
# How far the callback may run ahead of the wall clock before it waits (seconds).
MAX_LEAD = 0.3

_sd = None
_sd_error: str | None = None


def _sounddevice():
    """The sounddevice module, or None with the reason in _sd_error (PortAudio missing raises OSError on import)."""
    global _sd, _sd_error
    if _sd is None and _sd_error is None:
        try:
            import sounddevice

            _sd = sounddevice
        except (OSError, ImportError) as exc:
            _sd_error = f"PortAudio is not available ({exc}); install it (e.g. apt install libportaudio2)"
    return _sd


class Player(QObject):
    """Plays a span of one mono recording at a speed, once or looped, and reports the playhead."""

    positionChanged = Signal(float)  # seconds in the recording
    stateChanged = Signal(bool)  # playing or not
    error = Signal(str)

    def __init__(self, parent=None, interval_ms: int = 30):
        super().__init__(parent)
        self._wave = np.zeros(0, dtype=np.float32)
        self._rate = 1
        self.speed = 1.0
        self.loop = False
        self.position = 0.0  # seconds; where the playhead is (also while stopped)
        self.span: tuple[float, float] | None = None  # what the current/last play covers
        self._stream = None
        self._buffer = np.zeros(0, dtype=np.float32)
        self._cursor = 0
        self._lock = threading.Lock()
        self._clock_start = 0.0
        self._device_rate = 0
        self._unavailable: str | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        app = QCoreApplication.instance()
        if app is not None:
            # Child widgets get no closeEvent when the window closes: stop the stream before Python tears down.
            app.aboutToQuit.connect(self.stop)

    # -- state ----------------------------------------------------------------------------------
    @property
    def is_playing(self) -> bool:
        return self._stream is not None

    @property
    def available(self) -> bool:
        if _sounddevice() is None:
            self._unavailable = _sd_error
            return False
        return self._unavailable is None

    @property
    def unavailable_reason(self) -> str | None:
        return _sd_error if _sounddevice() is None else self._unavailable

    @property
    def duration(self) -> float:
        return len(self._wave) / self._rate if self._rate else 0.0

    def set_audio(self, wave: np.ndarray | None, sample_rate: int) -> None:
        self.stop()
        self._wave = np.zeros(0, dtype=np.float32) if wave is None else np.asarray(wave, dtype=np.float32)
        self._rate = int(sample_rate) or 1
        self.position = 0.0
        self.span = None
        self.positionChanged.emit(0.0)

    def set_speed(self, speed: float) -> None:
        """Takes effect at the next play (a running span restarts from the playhead at the new speed)."""
        speed = float(speed)
        if speed <= 0:
            raise ValueError("speed must be positive")
        if abs(speed - self.speed) < 1e-9:
            return
        self.speed = speed
        if self.is_playing and self.span:
            end = self.span[1]
            start = self.span[0] if self.loop else self.position
            self.stop()
            self.play(start, end, keep_span=self.span)

    def set_loop(self, loop: bool) -> None:
        self.loop = bool(loop)

    # -- control --------------------------------------------------------------------------------
    def play(self, start: float | None = None, end: float | None = None, keep_span=None) -> bool:
        """Play ``start``-``end`` seconds (default: from the playhead to the end). False when it cannot."""
        self.stop()
        duration = self.duration
        if duration <= 0:
            self._report("Nothing to play: the recording's audio is not loaded")
            return False
        if start is None:
            # From the playhead; from the beginning once the playhead has reached the end.
            start = self.position if self.position < duration - 1e-3 else 0.0
        start = min(max(0.0, float(start)), duration)
        end = duration if end is None else min(max(start, float(end)), duration)
        if end - start < 1e-3:
            return False
        sd = _sounddevice()
        if sd is None:
            self._report(f"No playback: {_sd_error}")
            return False
        segment = self._wave[int(start * self._rate) : int(np.ceil(end * self._rate))]
        stream = None
        last_error = None
        # The file's own rate first; ALSA's plug layer usually converts. Else the device's default rate.
        for device_rate in self._candidate_rates(sd):
            try:
                stream = sd.OutputStream(
                    samplerate=device_rate, channels=1, dtype="float32", callback=self._callback, latency="low"
                )
                break
            except Exception as exc:  # PortAudioError, ValueError for an invalid rate
                last_error = exc
        if stream is None:
            self._unavailable = f"no audio output device ({_short(last_error)})"
            self._report(f"No playback: {self._unavailable}. Everything else keeps working.")
            return False
        self._unavailable = None
        self._device_rate = int(stream.samplerate)
        # Speed by resampling: played at the device rate, a segment resampled to rate/speed lasts 1/speed.
        buffer = resample(segment, self._rate, self._device_rate / self.speed, quality="MQ")
        with self._lock:
            self._buffer = buffer
            self._cursor = 0
        self.span = keep_span or (start, end)
        self._play_from = start
        self._play_to = end
        self._clock_start = time.monotonic()
        self._stream = stream
        try:
            stream.start()
        except Exception as exc:
            self._stream = None
            stream.close()
            self._unavailable = f"cannot start the audio device ({_short(exc)})"
            self._report(f"No playback: {self._unavailable}")
            return False
        self.position = start
        self._timer.start()
        self.stateChanged.emit(True)
        self.positionChanged.emit(self.position)
        return True

    def toggle(self, start: float | None = None, end: float | None = None) -> bool:
        if self.is_playing:
            self.stop()
            return False
        return self.play(start, end)

    def stop(self) -> None:
        """Stop (the playhead stays where it was, so play resumes from there)."""
        stream, self._stream = self._stream, None
        self._timer.stop()
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception:
                pass
            self.stateChanged.emit(False)

    def seek(self, seconds: float) -> None:
        seconds = min(max(0.0, float(seconds)), self.duration if self.duration else float(seconds))
        if self.is_playing and self.span:
            end = self._play_to
            span = self.span
            self.stop()
            self.position = seconds
            if seconds < end:
                self.play(seconds, end, keep_span=span)
            return
        self.position = seconds
        self.positionChanged.emit(seconds)

    def close(self) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------------
    def _candidate_rates(self, sd) -> list[int]:
        rates = [self._rate]
        try:
            default = int(sd.query_devices(kind="output")["default_samplerate"])
            if default not in rates:
                rates.append(default)
        except Exception:
            pass
        for rate in (48000, 44100):
            if rate not in rates:
                rates.append(rate)
        return rates

    def _report(self, message: str) -> None:
        self.error.emit(message)

    def _callback(self, outdata, frames, time_info, status) -> None:  # PortAudio thread
        with self._lock:
            buffer, cursor = self._buffer, self._cursor
            length = len(buffer)
            if self.loop and length:
                index = (cursor + np.arange(frames)) % length
                outdata[:, 0] = buffer[index]
            else:
                chunk = buffer[cursor : cursor + frames]
                outdata[: len(chunk), 0] = chunk
                outdata[len(chunk) :, 0] = 0.0
            self._cursor = cursor + frames
            ahead = self._cursor / self._device_rate - (time.monotonic() - self._clock_start) if self._device_rate else 0
        if ahead > MAX_LEAD:
            time.sleep(min(ahead - MAX_LEAD / 2, 0.2))

    def _tick(self) -> None:
        if self._stream is None:
            return
        elapsed = (time.monotonic() - self._clock_start) * self.speed
        length = self._play_to - self._play_from
        if self.loop and length > 0:
            self.position = self._play_from + (elapsed % length)
        else:
            self.position = min(self._play_to, self._play_from + elapsed)
        self.positionChanged.emit(self.position)
        if not self.loop and elapsed >= length:
            self.stop()


def _short(exc) -> str:
    text = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else type(exc).__name__
    return text[:160]
