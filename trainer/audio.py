"""Audio reading, resampling and the reference cycle preparation (REFERENCE.md section 1).

The preparation follows the published pipeline step by step: load the whole recording, resample it,
fade the whole recording in and out over sr/16 samples (62.5 ms), slice each cycle at
``[int(start*sr), int(end*sr)]``, then cut to the first 8 s or tile ("repeat") to 8 s and fade out
again, or centre in zeros ("zero").
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soundfile as sf
import soxr

PAD_MODES = ("repeat", "zero")


class AudioError(Exception):
    """An audio file that cannot be used; the message names the file."""


# Only float files can hold NaN or infinity; PCM cannot, so their samples need no scan.
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
# Float audio is scaled to [-1, 1]; a file far above that was most likely written in integer scale,
# and its features would sit tens of decibels above every other recording's.
FULL_SCALE_MARGIN = 2.0
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def audio_info(path: str | os.PathLike) -> dict:
    """Sample rate, channels, subtype, frames and duration of an audio file, or AudioError."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError with varying text
        raise AudioError(f"{path}: not a readable audio file ({_short(exc)})") from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{path}: holds no audio samples")
    return {
        "sample_rate": int(info.samplerate),
        "channels": int(info.channels),
        "subtype": str(info.subtype),
        "frames": int(info.frames),
        "duration": float(info.frames) / float(info.samplerate),
    }


def scan_samples(path: str | os.PathLike, info: dict | None = None, block_frames: int = 1 << 16) -> float | None:
    """The peak of a float file's samples, or AudioError at its first sample that is not a finite number.

    One pass over the data, in blocks; None for PCM files, which cannot hold such a sample. A value
    beyond float32's range counts as not finite, since it becomes infinity when read.
    """
    path = Path(path)
    info = info or audio_info(path)
    if info["subtype"] not in FLOAT_SUBTYPES:
        return None
    peak = 0.0
    first = 0
    try:
        for block in sf.blocks(str(path), blocksize=block_frames, dtype="float64", always_2d=True):
            magnitude = np.abs(block)
            bad = ~(magnitude <= _FLOAT32_MAX)  # NaN compares false, so it lands here too
            if bad.any():
                frame, channel = (int(i) for i in np.argwhere(bad)[0])
                raise AudioError(_non_finite(path, first + frame, channel, block[frame, channel], info))
            if block.size:
                peak = max(peak, float(magnitude.max()))
            first += len(block)
    except AudioError:
        raise
    except Exception as exc:  # a file whose header promises more than its data holds
        raise AudioError(f"{path}: cannot read samples ({_short(exc)})") from exc
    return peak


def _non_finite(path: Path, frame: int, channel: int, value: float, info: dict) -> str:
    where = f"sample {frame}" + (f" of channel {channel + 1}" if info["channels"] > 1 else "")
    seconds = frame / info["sample_rate"]
    if math.isnan(value):
        what = "not a number (NaN)"
    else:
        what = "infinite" if math.isinf(value) else f"{value:g}, beyond 32-bit float range"
    return f"{path}: {where} (at {seconds:.3f} s) is {what}; audio with non-finite samples cannot be used"


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.replace("Error opening", "cannot open")[:200]


def read_audio(path: str | os.PathLike, start: float | None = None, stop: float | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and the file's sample rate; optionally a span in seconds."""
    path = Path(path)
    info = audio_info(path)
    sr = info["sample_rate"]
    first = 0 if start is None else max(0, int(start * sr))
    last = None if stop is None else min(info["frames"], int(math.ceil(stop * sr)))
    try:
        data, sr = sf.read(str(path), start=first, stop=last, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"{path}: cannot read samples ({_short(exc)})") from exc
    if info["subtype"] in FLOAT_SUBTYPES and not np.isfinite(data).all():
        frame, channel = (int(i) for i in np.argwhere(~np.isfinite(data))[0])
        raise AudioError(_non_finite(path, first + frame, channel, float(data[frame, channel]), info))
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(mono, dtype=np.float32), int(sr)


def resample(wave: np.ndarray, source_rate: int, target_rate: int, quality: str = "HQ") -> np.ndarray:
    if source_rate == target_rate:
        return np.asarray(wave, dtype=np.float32)
    return soxr.resample(np.asarray(wave, dtype=np.float32), source_rate, target_rate, quality=quality).astype(
        np.float32, copy=False
    )


def fade_samples(sample_rate: int) -> int:
    return int(sample_rate / 16)


def _ramp(length: int) -> np.ndarray:
    # torchaudio.transforms.Fade(fade_shape="linear") uses linspace(0, 1, n), endpoints included.
    return np.linspace(0.0, 1.0, length, dtype=np.float32)


def fade_in_out(wave: np.ndarray, length: int) -> np.ndarray:
    """Linear fade in and out of ``length`` samples each (copy)."""
    out = np.array(wave, dtype=np.float32, copy=True)
    n = min(length, out.shape[-1])
    if n > 0:
        ramp = _ramp(length)[:n]
        out[..., :n] *= ramp
        out[..., out.shape[-1] - n :] *= (1.0 - _ramp(length))[-n:]
    return out


def fade_out(wave: np.ndarray, length: int) -> np.ndarray:
    out = np.array(wave, dtype=np.float32, copy=True)
    n = min(length, out.shape[-1])
    if n > 0:
        out[..., out.shape[-1] - n :] *= (1.0 - _ramp(length))[-n:]
    return out


def cut_or_pad(chunk: np.ndarray, target: int, mode: str = "repeat", fade: int = 0) -> np.ndarray:
    """Cut a cycle to its first ``target`` samples, or pad it: tiled with a fade-out, or centred in zeros."""
    if mode not in PAD_MODES:
        raise ValueError(f"unknown padding {mode!r} (expected one of {', '.join(PAD_MODES)})")
    n = chunk.shape[-1]
    if n >= target:
        return np.array(chunk[..., :target], dtype=np.float32)
    if n == 0:
        return np.zeros(target, dtype=np.float32)
    if mode == "zero":
        out = np.zeros(target, dtype=np.float32)
        offset = (target - n) // 2
        out[offset : offset + n] = chunk
        return out
    tiled = np.tile(chunk, math.ceil(target / n))[:target]
    return fade_out(tiled, fade)


@dataclass(frozen=True)
class PrepSettings:
    """Everything that decides what a prepared cycle looks like; part of every feature cache key."""

    sample_rate: int = 16000
    duration: float = 8.0
    pad: str = "repeat"
    fade: bool = True
    resample_quality: str = "HQ"

    @property
    def target_samples(self) -> int:
        return int(round(self.duration * self.sample_rate))


def prepare_recording_cycles(
    wave: np.ndarray, source_rate: int, spans: Sequence[tuple[float, float]], settings: PrepSettings = PrepSettings()
) -> np.ndarray:
    """All cycles of one recording, prepared: array (len(spans), target_samples) float32."""
    sr = settings.sample_rate
    wave = resample(wave, source_rate, sr, settings.resample_quality)
    fade = fade_samples(sr)
    if settings.fade:
        wave = fade_in_out(wave, fade)
    out = np.empty((len(spans), settings.target_samples), dtype=np.float32)
    for i, (start, end) in enumerate(spans):
        chunk = wave[int(start * sr) : int(end * sr)]
        out[i] = cut_or_pad(chunk, settings.target_samples, settings.pad, fade if settings.fade else 0)
    return out


def prepare_cycles(
    project,
    cycles: Iterable[dict],
    settings: PrepSettings = PrepSettings(),
    progress=None,
) -> np.ndarray:
    """Prepared waveforms for the given cycle rows (from ``Project.cycles``), in the given order.

    Each recording is read and resampled once. ``progress(done, total)`` is called per recording.
    Raises AudioError naming the file when a recording's audio is missing or unreadable.
    """
    cycles = list(cycles)
    out = np.empty((len(cycles), settings.target_samples), dtype=np.float32)
    by_recording: dict[int, list[int]] = {}
    for index, row in enumerate(cycles):
        by_recording.setdefault(row["recording_id"], []).append(index)
    total = len(by_recording)
    for done, (recording_id, indices) in enumerate(by_recording.items(), 1):
        rec = project.recording(recording_id)
        path = project.audio_path(rec)
        if path is None or rec.get("audio_status") not in ("ok", None):
            raise AudioError(f"{rec['name']}: audio is {rec.get('audio_status', 'missing')} ({path})")
        wave, sr = read_audio(path)
        spans = [(cycles[i]["start"], cycles[i]["end"]) for i in indices]
        out[indices] = prepare_recording_cycles(wave, sr, spans, settings)
        if progress is not None:
            progress(done, total)
    return out
