"""Candidate breathing cycles of a recording that has no annotations, found from the signal alone.

**The method** (``auto``). The breath-sound envelope (:mod:`.envelope`: median band power of
100-400 Hz in dB, every 20 ms, robust to crackles, heart sounds and wheezes) rises with each
breath and falls between breaths. Its prominent valleys are the candidate boundaries. A cycle starts
at the onset of inspiration, and inspiration is the louder phase, so a valley that is followed by a
louder peak than the one before it is more likely a cycle boundary than the pause between
inspiration and expiration: each valley scores its prominence plus ``asymmetry_weight`` times that
difference. A dynamic programme then picks the boundaries that maximise the total score less
``boundary_cost`` per boundary, with consecutive boundaries ``min_cycle`` to ``max_cycle`` apart.
A boundary sits where the envelope has risen ``onset_rise`` of the way from the valley floor
towards the next peak (ICBHI annotators mark the start of the rise, not the quietest instant).
Cycles are contiguous, as in the ICBHI annotations, which give the pause after expiration to the
cycle it ends. The partial cycles at either end are kept when they hold a breath, trimmed to it.

**The fallback** (``fixed``, and ``auto`` where the signal shows no rhythm: fewer than two
boundaries, or a stretch longer than ``max_cycle`` without one): windows of ``window`` seconds
every ``hop`` seconds. Every :class:`Segment` says which method made it; a fixed window's
confidence is 0.

Defaults were tuned on the ten real ICBHI recordings in ``shared/data/icbhi`` and checked on the
synthetic set (``benchmarks/bench_segment.py`` prints both). Segments never overlap and never pass
the end of the audio.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from ..audio import read_audio
from .envelope import Envelope, Valley, band_envelope, prominent_valleys

METHODS = ("auto", "fixed")
ENVELOPE, FIXED = "envelope", "fixed"
# The shortest cycle in the ICBHI annotations: anything shorter is not worth classifying.
MIN_SEGMENT = 0.2
# Confidence: a boundary scoring this many dB (prominence plus weighted asymmetry) or more is sure;
# a cycle e times longer or shorter than the recording's typical one keeps exp(-1 / LENGTH_SPREAD)
# of it; a partial cycle at either end keeps PARTIAL_CONFIDENCE. On the ICBHI files, segments that
# match no annotated cycle are far from the typical length more often than their boundaries are weak.
CERTAIN_DB = 24.0
LENGTH_SPREAD = 0.5
PARTIAL_CONFIDENCE = 0.5


class SegmentError(ValueError):
    """Audio that cannot be segmented (no samples, shorter than a cycle, a bad setting); says why."""


class Segment(NamedTuple):
    """A candidate cycle: seconds from the start of the recording, the method that made it, 0-1 confidence."""

    start: float
    end: float
    method: str
    confidence: float


@dataclass(frozen=True)
class SegmentSettings:
    """How segments are found; the defaults are the best of a grid over the ten ICBHI recordings.

    Two things the grid showed: the asymmetry (is the next breath louder?) tells boundaries from
    the inspiration-expiration pause better than depth does, hence its weight of 3; and cycles
    under 1 s or over 8 s are rare enough in ICBHI that forbidding them costs nothing.
    """

    low_hz: float = 100.0
    high_hz: float = 400.0
    median_s: float = 0.14  # longer than a crackle or a heart sound, shorter than a breath
    smooth_s: float = 0.2
    prominence_db: float = 2.0
    asymmetry_weight: float = 3.0
    boundary_cost: float = 12.0  # dB of score a valley needs to be worth a boundary
    onset_rise: float = 0.25
    min_cycle: float = 1.0
    max_cycle: float = 8.0
    window: float = 3.0
    hop: float = 3.0

    def check(self) -> None:
        if not 0 < self.low_hz < self.high_hz <= 2000:
            raise SegmentError(f"band {self.low_hz:g}-{self.high_hz:g} Hz must lie within 0-2000 Hz")
        if not 0 < self.min_cycle < self.max_cycle:
            raise SegmentError(f"cycle length limits {self.min_cycle:g}-{self.max_cycle:g} s are not increasing")
        if self.window < MIN_SEGMENT:
            raise SegmentError(f"fixed window of {self.window:g} s is shorter than a cycle ({MIN_SEGMENT:g} s)")
        if self.hop < self.window:
            raise SegmentError(f"hop {self.hop:g} s is shorter than the window {self.window:g} s: windows would overlap")


def segment_file(path: str | os.PathLike, method: str = "auto", settings: SegmentSettings = SegmentSettings()) -> list[Segment]:
    """Segments of an audio file (any rate, mono or mixed down); AudioError names a bad file."""
    wave, rate = read_audio(path)
    try:
        return segment_wave(wave, rate, method, settings)
    except SegmentError as exc:
        raise SegmentError(f"{path}: {exc}") from None


def segment_wave(wave: np.ndarray, sample_rate: int, method: str = "auto", settings: SegmentSettings = SegmentSettings()) -> list[Segment]:
    """Candidate cycles of a mono waveform, in time order."""
    if method not in METHODS:
        raise SegmentError(f"unknown method {method!r} (expected one of {', '.join(METHODS)})")
    settings.check()
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise SegmentError(f"expected a mono waveform, got an array of shape {wave.shape}")
    if sample_rate <= 0 or wave.size == 0:
        raise SegmentError("no audio samples")
    duration = wave.size / float(sample_rate)
    if method == "auto" and sample_rate < 2 * settings.high_hz:
        raise SegmentError(f"{sample_rate} Hz audio cannot hold the {settings.high_hz:g} Hz the envelope needs")
    if duration < MIN_SEGMENT:
        raise SegmentError(f"{duration:.3f} s of audio is shorter than the shortest cycle ({MIN_SEGMENT:g} s)")
    if method == FIXED or duration < settings.min_cycle:
        return fixed_windows(0.0, duration, settings.window, settings.hop)
    envelope = band_envelope(
        wave, sample_rate, settings.low_hz, settings.high_hz, median_s=settings.median_s, smooth_s=settings.smooth_s
    )
    return envelope_segments(envelope, settings)


def fixed_windows(start: float, end: float, window: float, hop: float) -> list[Segment]:
    """Windows of ``window`` s every ``hop`` s over [start, end]; a last piece under MIN_SEGMENT is dropped."""
    out = []
    count = int(np.floor((end - start) / hop + 1e-9)) + 1
    for k in range(count):
        a = float(start + k * hop)
        b = float(min(a + window, end))
        if b - a >= MIN_SEGMENT - 1e-9:
            out.append(Segment(round(a, 3), _no_later(b, end), FIXED, 0.0))
    return out


def _no_later(time: float, limit: float) -> float:
    """A time to the millisecond, never rounded past ``limit`` (the end of the audio)."""
    return min(round(time, 3), float(np.floor(limit * 1000 + 1e-6) / 1000))


def envelope_segments(envelope: Envelope, settings: SegmentSettings) -> list[Segment]:
    valleys = prominent_valleys(envelope, settings.prominence_db)
    times = [onset_time(envelope, v, settings.onset_rise) for v in valleys]
    scores = [v.prominence + settings.asymmetry_weight * v.asymmetry for v in valleys]
    chosen = choose_boundaries(times, scores, settings)
    if len(chosen) < 2:
        return fixed_windows(0.0, envelope.duration, settings.window, settings.hop)
    bounds = [times[i] for i in chosen]
    strength = [min(1.0, max(0.0, scores[i] / CERTAIN_DB)) for i in chosen]
    # (start, end, boundary strength, partial)
    spans = [(bounds[k], bounds[k + 1], min(strength[k], strength[k + 1]), False) for k in range(len(bounds) - 1)]
    lead = edge_span(envelope, 0.0, bounds[0], valleys[chosen[0]].floor, settings, leading=True)
    if lead is not None:
        spans.insert(0, (lead[0], bounds[0], strength[0], True))
    tail = edge_span(envelope, bounds[-1], envelope.duration, valleys[chosen[-1]].floor, settings, leading=False)
    if tail is not None:
        spans.append((bounds[-1], tail[1], strength[-1], True))
    whole = [b - a for a, b, _, partial in spans if not partial and b - a <= settings.max_cycle]
    typical = float(np.median(whole)) if whole else settings.window
    out: list[Segment] = []
    for start, end, sure, partial in spans:
        if end - start > settings.max_cycle:  # no boundary for too long: no rhythm to follow there
            out += fixed_windows(start, end, settings.window, settings.hop)
        elif end - start >= MIN_SEGMENT:
            # Missed or extra boundaries show as cycles far from the recording's typical length.
            regular = PARTIAL_CONFIDENCE if partial else float(np.exp(-abs(np.log((end - start) / typical)) / LENGTH_SPREAD))
            out.append(Segment(round(start, 3), _no_later(end, envelope.duration), ENVELOPE, round(sure * regular, 2)))
    return out


def onset_time(envelope: Envelope, valley: Valley, rise: float) -> float:
    """Where the envelope after ``valley`` first climbs ``rise`` of the way to the next peak."""
    level = envelope.level
    target = valley.floor + rise * (valley.after - valley.floor)
    above = np.flatnonzero(level[valley.index :] >= target)
    frame = valley.index + (int(above[0]) if above.size else 0)
    return float(envelope.times[frame])


def choose_boundaries(times: Sequence[float], scores: Sequence[float], settings: SegmentSettings) -> list[int]:
    """Indices of the valleys to use as boundaries: the best-scoring chain with cycle-length spacing.

    A chain may jump a stretch longer than ``max_cycle`` (a breath hold, a noisy stretch) at the
    price of one boundary; that stretch then gets fixed windows.
    """
    n = len(times)
    at = np.asarray(times, dtype=np.float64)
    gain = np.asarray(scores, dtype=np.float64) - settings.boundary_cost
    best = gain.copy()
    previous = np.full(n, -1)
    for j in range(1, n):
        gaps = at[j] - at[:j]
        value = best[:j] + gain[j] - np.where(gaps > settings.max_cycle, settings.boundary_cost, 0.0)
        value[gaps < settings.min_cycle] = -np.inf
        i = int(np.argmax(value))
        if value[i] > best[j]:
            best[j], previous[j] = value[i], i
    if n == 0 or best.max() <= 0:
        return []
    chain = [int(np.argmax(best))]
    while previous[chain[-1]] >= 0:
        chain.append(int(previous[chain[-1]]))
    return chain[::-1]


def edge_span(envelope: Envelope, start: float, end: float, floor: float, settings: SegmentSettings, leading: bool):
    """The breath in a partial cycle at either end, as (start, end), or None when it holds none.

    It holds one when it rises ``prominence_db`` above ``floor``, the valley of the boundary beside
    it; a quiet stretch before the first breath (or after the last) is trimmed off.
    """
    level, times = envelope.level, envelope.times
    inside = np.flatnonzero((times >= start) & (times <= end))
    if inside.size < 2 or end - start < MIN_SEGMENT:
        return None
    part = level[inside]
    peak = int(np.argmax(part))
    if part[peak] - floor < settings.prominence_db:
        return None
    # The quiet side of the peak: before it for a first cycle, after it for a last one.
    quiet = part[: peak + 1] if leading else part[peak:]
    low = float(quiet.min())
    loud = np.flatnonzero(quiet >= low + settings.onset_rise * (part[peak] - low))
    if leading:
        return (float(times[inside[int(loud[0])]]) if loud[0] > 0 else start), end
    last = peak + int(loud[-1])
    return start, (float(times[inside[last]]) if last < part.size - 1 else end)
