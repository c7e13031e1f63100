"""Spectrogram computation for the Listen view: numpy only, fast enough to draw a 20 s recording at once.

The display never needs more columns than a screen has pixels (times a little), so the hop between
frames grows with the recording's length instead of computing every 256th sample of an hour-long file
and throwing most of it away. Frames are strided views of the signal (no copy) and go through one
batched ``rfft``; only the bins below the chosen maximum frequency are kept. Results are cached per
(recording, settings) so switching back to a recording or a preset is free.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace

import numpy as np

from trainer.audio import resample

WINDOW_LENGTHS = (256, 512, 1024, 2048, 4096)
COLORMAPS = ("viridis", "inferno", "magma", "plasma", "cividis", "turbo", "grey")
# Columns computed for the whole recording (about two per pixel of a wide plot); zoomed in, the view
# computes a finer image of the visible span only.
MAX_COLUMNS = 2560
# Frames never overlap by more than this fraction, whatever the length: more would only smear time.
MIN_HOP_FRACTION = 0.25


@dataclass(frozen=True)
class SpectrogramSettings:
    window: int = 1024  # samples
    max_freq: float = 4000.0  # Hz; clipped to Nyquist
    dynamic_range: float = 70.0  # dB below the loudest bin that still gets a colour
    colormap: str = "viridis"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> "SpectrogramSettings":
        base = cls()
        try:
            window = int(data.get("window", base.window))
            window = min(WINDOW_LENGTHS, key=lambda w: abs(w - window))
            return cls(
                window=window,
                max_freq=max(100.0, float(data.get("max_freq", base.max_freq))),
                dynamic_range=min(150.0, max(10.0, float(data.get("dynamic_range", base.dynamic_range)))),
                colormap=str(data.get("colormap", base.colormap))
                if data.get("colormap") in COLORMAPS
                else base.colormap,
            )
        except (TypeError, ValueError):
            return base

    def compute_key(self) -> tuple:
        # The colour map and dynamic range only change how the same dB values are shown.
        return (self.window, self.max_freq)


BUILTIN_PRESETS: dict[str, SpectrogramSettings] = {
    "Lung sounds": SpectrogramSettings(1024, 4000.0, 70.0, "viridis"),
    "Crackles (fine time)": SpectrogramSettings(256, 4000.0, 60.0, "inferno"),
    "Wheezes (fine frequency)": SpectrogramSettings(4096, 2000.0, 80.0, "magma"),
    "Full band": SpectrogramSettings(1024, 22050.0, 90.0, "grey"),
}


@dataclass
class Spectrogram:
    """dB values (columns = time, rows = frequency) and where they sit on the axes."""

    db: np.ndarray  # float32, shape (frames, bins)
    t0: float  # centre time of the first frame, seconds
    hop: float  # seconds between frames
    f_max: float  # frequency at the top edge of the last bin, Hz
    peak: float  # loudest dB value, for the dynamic range

    @property
    def t1(self) -> float:
        return self.t0 + self.hop * self.db.shape[0]

    def levels(self, dynamic_range: float) -> tuple[float, float]:
        return self.peak - dynamic_range, self.peak


def decimation_factor(sample_rate: float, settings: SpectrogramSettings) -> int:
    """Largest power of two that keeps ``max_freq`` below the decimated Nyquist (with room for the filter)."""
    factor = 1
    while (
        sample_rate / (factor * 2) / 2 >= settings.max_freq * 1.15
        and settings.window // (factor * 2) >= 64
    ):
        factor *= 2
    return factor


def _decimate(segment: np.ndarray, sample_rate: float, factor: int) -> np.ndarray:
    return resample(segment, sample_rate, sample_rate / factor, quality="MQ")


def hop_for(samples: int, window: int, max_columns: int = MAX_COLUMNS) -> int:
    hop = max(1, int(window * MIN_HOP_FRACTION))
    if samples > 0 and samples // hop > max_columns:
        hop = int(np.ceil(samples / max_columns))
    return hop


_WINDOWS: dict[int, np.ndarray] = {}


def _hann(n: int) -> np.ndarray:
    if n not in _WINDOWS:
        _WINDOWS[n] = np.hanning(n).astype(np.float32)
    return _WINDOWS[n]


def compute_spectrogram(
    wave: np.ndarray,
    sample_rate: int,
    settings: SpectrogramSettings,
    start: float = 0.0,
    end: float | None = None,
    max_columns: int = MAX_COLUMNS,
    progress=None,
) -> Spectrogram:
    """Power spectrogram in dB of ``wave[start:end]`` (seconds), at most ``max_columns`` frames.

    ``progress(done, total)`` is called between blocks of frames (it may raise to cancel).
    """
    wave = np.asarray(wave, dtype=np.float32)
    first = max(0, int(start * sample_rate))
    last = len(wave) if end is None else min(len(wave), int(np.ceil(end * sample_rate)))
    segment = wave[first:last]
    # Showing 0-4 kHz of a 44.1 kHz file needs a quarter of the samples: decimate (anti-aliased) and use a
    # proportionally shorter window, which keeps the same time span and bin spacing at a fraction of the cost.
    factor = decimation_factor(sample_rate, settings)
    if factor > 1:
        segment = _decimate(segment, sample_rate, factor)
        sample_rate = sample_rate / factor
        first = first / factor
    n = settings.window // factor
    if len(segment) < n:
        segment = np.pad(segment, (0, n - len(segment)))
    hop = hop_for(len(segment), n, max_columns)
    frames = np.lib.stride_tricks.sliding_window_view(segment, n)[::hop]
    nyquist = sample_rate / 2.0
    f_top = min(settings.max_freq, nyquist)
    bins = min(n // 2 + 1, int(np.ceil(f_top / nyquist * (n // 2))) + 1)
    window = _hann(n)
    out = np.empty((frames.shape[0], bins), dtype=np.float32)
    # Blocks keep the temporary complex array small (and give progress/cancel points on long files).
    block = max(1, (1 << 22) // n)
    total = frames.shape[0]
    for i in range(0, total, block):
        spec = np.fft.rfft(frames[i : i + block] * window, axis=1)[:, :bins]
        power = spec.real * spec.real + spec.imag * spec.imag
        out[i : i + block] = power
        if progress is not None:
            progress(min(total, i + block), total)
    # Reference: a full-scale sine through this window, so 0 dB means "as loud as the file can be".
    reference = float(window.sum() ** 2) / 4.0
    np.log10(np.maximum(out, reference * 1e-15), out=out)
    out *= 10.0
    out -= 10.0 * np.log10(reference)
    peak = float(out.max()) if out.size else 0.0
    return Spectrogram(
        db=out,
        t0=first / sample_rate + n / (2.0 * sample_rate),
        hop=hop / sample_rate,
        f_max=(bins - 0.5) * sample_rate / n if bins > 1 else f_top,
        peak=peak,
    )


def waveform_envelope(wave: np.ndarray, buckets: int = 8192) -> tuple[np.ndarray, np.ndarray] | None:
    """Min/max per bucket, interleaved, for drawing a long waveform as a filled band; None when short."""
    n = len(wave)
    if n <= buckets * 4:
        return None
    size = n // buckets
    body = np.asarray(wave[: size * buckets]).reshape(buckets, size)
    lo = body.min(axis=1)
    hi = body.max(axis=1)
    y = np.empty(buckets * 2, dtype=np.float32)
    y[0::2] = lo
    y[1::2] = hi
    x = np.repeat(np.arange(buckets, dtype=np.float64) * size, 2)
    return x, y


class SpectrogramCache:
    """Small LRU of computed spectrograms keyed by (recording key, compute settings, span, columns)."""

    def __init__(self, capacity: int = 12):
        self.capacity = capacity
        self._items: OrderedDict[tuple, Spectrogram] = OrderedDict()
        self._lock = threading.Lock()  # filled from worker threads, read on the GUI thread

    def get(self, key: tuple) -> Spectrogram | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: tuple, value: Spectrogram) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


CACHE = SpectrogramCache()


def lookup_table(name: str) -> np.ndarray:
    """256x3 uint8 colours of a map available offline in pyqtgraph (``grey`` is built here)."""
    if name == "grey":
        ramp = np.arange(256, dtype=np.uint8)
        return np.stack([ramp, ramp, ramp], axis=1)
    import pyqtgraph as pg

    try:
        cmap = pg.colormap.get(name)
    except Exception:  # a map missing from an older pyqtgraph: fall back rather than fail to draw
        cmap = pg.colormap.get("viridis")
    return cmap.getLookupTable(0.0, 1.0, 256, alpha=False)


def with_changes(settings: SpectrogramSettings, **changes) -> SpectrogramSettings:
    return replace(settings, **changes)
