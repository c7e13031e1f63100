"""The breath-sound envelope of a recording and its prominent valleys, the raw material of segmentation.

Breath sounds heard at the chest are band-limited noise with most of their energy between about
100 and 400 Hz (the chest wall damps the upper part of the tracheal 100-1000 Hz band; on the ICBHI
files 100-400 Hz follows the annotated cycles better than 100-1000 Hz or any band starting above
150 Hz). The envelope is the power of that band, frame by frame, on a dB scale. Two kinds of sound sit in the same band and are not
breathing: wheezes (tones, a few frequency bins wide but lasting seconds) and crackles and heart
sounds (broadband, but tens of milliseconds long). Taking the *median* over the band's frequency
bins ignores a tone, and a running median over time ignores a click, so the envelope follows the
breath noise rather than them.

A valley of the smoothed envelope is kept when it is at least ``prominence_db`` below the peaks on
either side. Everything here is vectorised but the one pass over the envelope's turning points
that finds the valleys, so a 20 s recording takes a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The envelope needs nothing above 2 kHz, so recordings are first averaged down to at least this rate.
ENVELOPE_RATE = 4000


@dataclass(frozen=True)
class Envelope:
    """A smoothed dB envelope sampled every ``step`` seconds; ``times`` are frame centres."""

    times: np.ndarray
    level: np.ndarray
    step: float
    duration: float


@dataclass(frozen=True)
class Valley:
    """A prominent minimum: its frame, level, and the levels of the peaks before and after it."""

    index: int
    floor: float
    before: float
    after: float

    @property
    def prominence(self) -> float:
        return min(self.before, self.after) - self.floor

    @property
    def asymmetry(self) -> float:
        """How much louder the sound after the valley is than the sound before it (dB)."""
        return self.after - self.before


def band_envelope(
    wave: np.ndarray, sample_rate: int, low_hz: float, high_hz: float, step: float = 0.02, window: float = 0.064,
    median_s: float = 0.14, smooth_s: float = 0.2,
) -> Envelope:
    """The median band power per frame in dB, median-filtered over ``median_s`` and averaged over ``smooth_s``."""
    wave = np.asarray(wave, dtype=np.float32)
    duration = wave.size / float(sample_rate)
    x, rate = decimate(wave, sample_rate)
    hop = max(1, int(round(step * rate)))
    # A power of two: pocketfft is several times slower on the odd sizes that rate * window gives.
    size = 1 << max(4, int(round(np.log2(window * rate))))
    if x.size < size:
        x = np.pad(x, (0, size - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, size)[::hop]
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    band = (freqs >= low_hz) & (freqs <= high_hz)
    power = np.abs(np.fft.rfft(frames * np.hanning(size), axis=1)[:, band]) ** 2
    if power.shape[1] == 0:
        raise ValueError(f"band {low_hz:g}-{high_hz:g} Hz holds no frequency bin at {rate:g} Hz")
    middle = power.shape[1] // 2
    level = 10.0 * np.log10(np.partition(power, middle, axis=1)[:, middle] + 1e-12)
    level = running_mean(running_median(level, _odd(median_s / (hop / rate))), max(1, int(round(smooth_s / (hop / rate)))))
    times = (np.arange(level.size) * hop + size / 2.0) / rate
    return Envelope(times=np.minimum(times, duration), level=level, step=hop / rate, duration=duration)


def decimate(wave: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """Block means of ``sample_rate // ENVELOPE_RATE`` samples, and the rate they leave.

    A block mean is a crude low-pass, but what it lets fold into 100-1000 Hz comes from near the
    multiples of the new rate, where it attenuates most (20 dB and more), and breath recordings
    carry little there; it costs a fraction of a proper resampler, which would take most of the time.
    """
    factor = max(1, int(sample_rate // ENVELOPE_RATE))
    if factor == 1:
        return wave.astype(np.float64), float(sample_rate)
    usable = wave.size - wave.size % factor
    # einsum sums the short rows several times faster than .mean(axis=1) does (float32: 11 terms lose nothing).
    blocks = np.einsum("ij->i", wave[:usable].reshape(-1, factor)).astype(np.float64)
    return blocks / factor, sample_rate / factor


def _odd(value: float) -> int:
    return int(round(value)) | 1


def running_median(values: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or values.size < 2:
        return values
    padded = np.pad(values, width // 2, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    return np.partition(windows, width // 2, axis=1)[:, width // 2]


def running_mean(values: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or values.size < 2:
        return values
    padded = np.pad(values, (width // 2, width - 1 - width // 2), mode="edge")
    total = np.cumsum(np.concatenate([[0.0], padded]))
    return (total[width:] - total[:-width]) / width


def prominent_valleys(envelope: Envelope, prominence_db: float) -> list[Valley]:
    """Valleys at least ``prominence_db`` below the peaks on either side, each with those peaks.

    One pass (Billauer's peak detection): a peak is confirmed once the envelope has fallen
    ``prominence_db`` below it, a valley once it has risen that much above it, so what is found
    alternates peak, valley, peak and every step is at least that large.
    """
    level = envelope.level
    if level.size < 3:
        return []
    # Between turning points the envelope is monotonic, so looking at them (and the ends) alone
    # finds the same peaks and valleys as looking at every frame, in a fraction of the time.
    slope = np.sign(np.diff(level))
    points = [0, *(np.flatnonzero(slope[1:] != slope[:-1]) + 1).tolist(), level.size - 1]
    values = level[points].tolist()
    peaks: list[int] = []
    valleys: list[int] = []
    high = low = 0
    rising = True
    for k in range(1, len(points)):
        value = values[k]
        if value > values[high]:
            high = k
        if value < values[low]:
            low = k
        if rising and value < values[high] - prominence_db:
            peaks.append(points[high])
            rising, low = False, k
        elif not rising and value > values[low] + prominence_db:
            valleys.append(points[low])
            rising, high = True, k
    if rising and len(valleys) == len(peaks) and valleys:
        peaks.append(points[high])  # the recording ends on the rise after its last valley
    # A valley needs a peak on both sides: the quiet start or end of a recording is no boundary
    # (its partial cycle is dealt with apart).
    return [
        Valley(v, float(level[v]), float(level[peaks[k]]), float(level[peaks[k + 1]]))
        for k, v in enumerate(valleys)
        if k + 1 < len(peaks)
    ]
