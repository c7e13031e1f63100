"""Model inputs: the Kaldi filterbank, its normalisations, CLAP features, SpecAugment and the feature cache.

Conventions (REFERENCE.md section 2):

* Waveforms are float in [-1, 1], exactly as :func:`trainer.audio.read_audio` returns them. They are
  *not* scaled to 16-bit integers: ``transformers.ASTFeatureExtractor`` (whose numpy path is the reference
  we test against) leaves its ``waveform * 2**15`` line commented out, and the AST checkpoints' AudioSet
  statistics (mean -4.27, std 4.57) belong to that [-1, 1] scale. Integer arrays are refused rather than
  guessed at.
* ``kaldi_fbank`` equals the ASTFeatureExtractor numpy path (``_extract_fbank_features`` without
  torchaudio, before its padding and normalisation) within 1e-6 on the real ICBHI recordings; the
  tests hold it to 1e-3. ``clap_features`` equals ``transformers.ClapFeatureExtractor`` (set up like
  laion/clap-htsat-unfused) within 1e-5 dB, ten times faster.
* A feature cache lives in ``project.artifacts / "features"``: one ``.npy`` (memory-mapped on load) and a
  JSON sidecar per (feature set, exact cycle set). Its key hashes every setting and
  ``project.cycle_set_fingerprint`` of the cycles (ids in order, boundaries, audio sha256), so an edit
  to a boundary or a changed audio file gives a new key; a relabel does not, as labels are no input.

Nothing here imports Qt.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from .audio import PrepSettings, read_audio, prepare_recording_cycles
from .project import file_sha256, now

FEATURE_VERSION = 1
"""Bump when the computation of any feature set changes: every existing cache then misses."""

# Kaldi floors the mel energies at float32 epsilon before the log.
KALDI_MEL_FLOOR = float(np.finfo(np.float32).eps)
AST_MEAN = -4.2677393
AST_STD = 4.5689974

ProgressFn = Callable[[int, int], None]


class FeatureError(Exception):
    """Features that cannot be computed for the cycles asked for; the message says which and why."""


# --------------------------------------------------------------------------------------------------------
# Kaldi filterbank
# --------------------------------------------------------------------------------------------------------
def _mel(freq):
    return 1127.0 * np.log(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)


def kaldi_mel_banks(
    num_mel_bins: int, n_fft: int, sample_rate: int, low_freq: float = 20.0, high_freq: float = 0.0
) -> np.ndarray:
    """Kaldi's triangular mel filters (triangles in mel space, no area normalisation), float64.

    Shape (n_fft // 2 + 1, num_mel_bins). Kaldi leaves the Nyquist bin out of every filter; its row is
    zero. ``high_freq <= 0`` means Nyquist plus ``high_freq``, as in Kaldi.
    """
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not 0.0 <= low_freq < high_freq <= nyquist:
        raise ValueError(f"bad mel range {low_freq}-{high_freq} Hz for sample rate {sample_rate} Hz")
    mel_low, mel_high = _mel(low_freq), _mel(high_freq)
    delta = (mel_high - mel_low) / (num_mel_bins + 1)
    edges = mel_low + delta * np.arange(num_mel_bins + 2, dtype=np.float64)
    left, center, right = edges[:-2], edges[1:-1], edges[2:]
    bins = _mel(sample_rate / n_fft * np.arange(n_fft // 2, dtype=np.float64))[:, None]
    up = (bins - left) / (center - left)
    down = (right - bins) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.concatenate([banks, np.zeros((1, num_mel_bins))], axis=0)


MEL_GROUP = 16


@functools.lru_cache(maxsize=32)
def _fbank_tables(
    sample_rate: int,
    num_mel_bins: int,
    win_length: int,
    n_fft: int,
    low_freq: float,
    high_freq: float,
    device: str,
) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """Window (float64 and float32) and banded mel matrix for one device, built once.

    The mel matrix is 98 % zeros (each FFT bin feeds at most two filters), so it is applied as one small
    float32 matmul per group of ``MEL_GROUP`` neighbouring filters over just the FFT bins they touch: 8x
    fewer multiply-adds than the dense (257 x 128) product, and 3x faster on a CPU.
    """
    window = torch.from_numpy(np.hanning(win_length)).to(device=device)
    assert win_length < 2 or window[0].item() == 0.0  # _fbank_rows relies on it
    mel = kaldi_mel_banks(num_mel_bins, n_fft, sample_rate, low_freq, high_freq)
    bands = []
    for j0 in range(0, num_mel_bins, MEL_GROUP):
        j1 = min(num_mel_bins, j0 + MEL_GROUP)
        rows = np.nonzero(mel[:, j0:j1].any(axis=1))[0]
        if rows.size == 0:
            continue
        a, b = int(rows[0]), int(rows[-1]) + 1
        weights = torch.from_numpy(np.ascontiguousarray(mel[a:b, j0:j1])).to(device=device, dtype=torch.float32)
        bands.append((a, b, j0, j1, weights))
    return window, window.to(torch.float32), tuple(bands)


def _as_batch(waveform) -> tuple[torch.Tensor, bool]:
    if isinstance(waveform, np.ndarray):
        if not np.issubdtype(waveform.dtype, np.floating):
            raise TypeError(
                f"waveform must be float samples in [-1, 1], got {waveform.dtype} (convert integer PCM first)"
            )
        x = torch.from_numpy(np.ascontiguousarray(waveform))
    elif isinstance(waveform, torch.Tensor):
        if not waveform.is_floating_point():
            raise TypeError(f"waveform must be float samples in [-1, 1], got {waveform.dtype}")
        x = waveform
    else:
        raise TypeError(f"waveform must be a numpy array or a torch tensor, got {type(waveform).__name__}")
    if x.ndim == 1:
        return x.unsqueeze(0), True
    if x.ndim == 2:
        return x, False
    raise ValueError(f"waveform must be (samples,) or (batch, samples), got shape {tuple(x.shape)}")


def fbank_frames(num_samples: int, sample_rate: int = 16000, frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0) -> int:
    """Frames Kaldi makes with snip_edges: 1 + (samples - window) // shift, or 0 if shorter than a window."""
    win = int(sample_rate * frame_length_ms * 0.001)
    shift = int(sample_rate * frame_shift_ms * 0.001)
    return 0 if num_samples < win else 1 + (num_samples - win) // shift


def kaldi_fbank(
    waveform,
    sample_rate: int = 16000,
    num_mel_bins: int = 128,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    preemphasis: float = 0.97,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    fft_dtype: torch.dtype = torch.float64,
    block_frames: int | None = None,
    workers: int | None = None,
) -> torch.Tensor:
    """Kaldi-compatible log-mel filterbank, batched, on the input's device.

    ``waveform``: (samples,) or (batch, samples), numpy array or tensor, float in [-1, 1]. Returns float32
    (frames, num_mel_bins) or (batch, frames, num_mel_bins). Settings are Kaldi's / torchaudio's
    ``compliance.kaldi.fbank`` with ``window_type="hanning"``: symmetric Hann window (``np.hanning``,
    ``torch.hann_window(periodic=False)``), 512-point FFT for the 400-sample window, DC removal and
    pre-emphasis per frame, power spectrum, no dither, no energy, htk_compat, snip_edges.

    Pre-emphasis and DC removal run in float64. The FFT runs in ``fft_dtype``: float64 (default)
    reproduces the reference within 1e-6 on real recordings; float32 is ~1.4x faster overall, but its
    rounding (relative to the loudest part of a frame) reaches a few 1e-4 in quiet bands next to loud
    ones. (Redoing only the frames with such bands in float64 was tried: after pre-emphasis the lowest
    bands are that quiet in most frames, so it saved nothing.) Power spectrum, mel projection and log run
    in float32 (no measurable change).
    ``block_frames`` bounds the working set (default 1024 frames, one cycle, on CPU, so a block stays in
    the L2 cache; 2**18 on GPUs). On CPU, blocks run on ``workers`` threads (default
    ``torch.get_num_threads()``), each with single-threaded ops; see :func:`_run_blocks_in_threads`.
    """
    x, single = _as_batch(waveform)
    if fft_dtype not in (torch.float32, torch.float64):
        raise ValueError(f"fft_dtype must be torch.float32 or torch.float64, got {fft_dtype}")
    win = int(sample_rate * frame_length_ms * 0.001)
    shift = int(sample_rate * frame_shift_ms * 0.001)
    n_fft = 1 << (win - 1).bit_length()
    batch, n = x.shape
    frames = fbank_frames(n, sample_rate, frame_length_ms, frame_shift_ms)
    device = x.device
    out = torch.empty((batch, frames, num_mel_bins), dtype=torch.float32, device=device)
    if frames == 0 or batch == 0:
        return out[0] if single else out
    tables = _fbank_tables(int(sample_rate), int(num_mel_bins), win, n_fft, float(low_freq), float(high_freq), str(device))

    if block_frames is None:
        block_frames = 1024 if device.type == "cpu" else 1 << 18
    settings = (win, shift, n_fft, float(preemphasis), fft_dtype, int(num_mel_bins))
    jobs = []  # (output view, input rows, frames): independent blocks that each fit in cache
    if frames <= block_frames:
        rows = max(1, block_frames // frames)
        for b0 in range(0, batch, rows):
            b1 = min(batch, b0 + rows)
            jobs.append((out[b0:b1], x[b0:b1], frames))
    else:  # long recordings: a slice of samples per block of frames
        for b in range(batch):
            for t0 in range(0, frames, block_frames):
                t1 = min(frames, t0 + block_frames)
                jobs.append((out[b : b + 1, t0:t1], x[b : b + 1, t0 * shift : (t1 - 1) * shift + win], t1 - t0))

    def run(job) -> None:
        target, rows_in, n_frames = job
        target.copy_(_fbank_rows(rows_in, n_frames, tables, *settings))

    if workers is None:
        workers = torch.get_num_threads() if device.type == "cpu" else 1
    workers = max(1, min(int(workers), len(jobs)))
    if workers == 1:
        for job in jobs:
            run(job)
    else:
        _run_blocks_in_threads(run, jobs, workers)
    return out[0] if single else out


def _run_blocks_in_threads(run, jobs, workers: int) -> None:
    """Blocks on ``workers`` threads, each with single-threaded torch ops.

    A block's ops are small (a few hundred thousand elements); torch's intra-op threads split each one
    and meet at a barrier, which on a busy machine (a training run beside it, other users) stalls
    whenever one thread is descheduled: measured 4 to 20 times slower than one thread at load 6-8 on
    2 cores.
    Independent blocks per thread never wait for each other. torch.set_num_threads is process-wide
    (MKL's part of it), so it is restored as soon as the blocks are done.
    """
    from concurrent.futures import ThreadPoolExecutor

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            for result in pool.map(run, jobs):
                del result
    finally:
        torch.set_num_threads(previous)


def _fbank_rows(
    x: torch.Tensor,
    frames: int,
    tables: tuple,
    win: int,
    shift: int,
    n_fft: int,
    preemphasis: float,
    fft_dtype: torch.dtype,
    num_mel_bins: int,
) -> torch.Tensor:
    """Filterbank of a few rows whose frames fit in cache: (rows, frames, bins) float32."""
    rows = x.shape[0]
    used = (frames - 1) * shift + win
    x64 = x[:, :used].to(torch.float64)
    # Frame means from sums over gcd(win, shift)-sample segments: 400/160 gives 80-sample segments and
    # each frame is 5 of them, 2 segments after the last; far cheaper than averaging the 2.5x as many
    # overlapping frame samples.
    g = math.gcd(win, shift)
    per_frame, step = win // g, shift // g
    segments = x64.reshape(rows, used // g, g).sum(dim=-1)
    last = (frames - 1) * step + 1
    sums = segments[:, 0:last:step].clone()
    for i in range(1, per_frame):
        sums += segments[:, i : i + last : step]
    dc = sums * ((1.0 - preemphasis) / win)
    # Pre-emphasis of the whole signal equals Kaldi's per-frame pre-emphasis at every frame sample but
    # the first, and the symmetric Hann window is exactly 0 there. DC removal before pre-emphasis turns
    # into subtracting (1 - p) * mean from every pre-emphasised sample of the frame.
    z = torch.empty_like(x64)
    z[:, 0] = x64[:, 0] * (1.0 - preemphasis)
    torch.sub(x64[:, 1:], x64[:, :-1], alpha=preemphasis, out=z[:, 1:])
    del x64
    framed = z.unfold(1, win, shift)  # (rows, frames, win) float64 view
    mel = _mel_energies(framed, dc, fft_dtype, tables, n_fft, num_mel_bins)
    return mel.clamp_min_(KALDI_MEL_FLOOR).log_().view(rows, frames, -1)


def _mel_energies(
    frames: torch.Tensor,
    dc: torch.Tensor,
    dtype: torch.dtype,
    tables: tuple,
    n_fft: int,
    num_mel_bins: int,
) -> torch.Tensor:
    """Mel energies (M, bins) float32 of float64 frames (..., win) minus their dc, windowed, FFT in ``dtype``."""
    window64, window32, bands = tables
    win = frames.shape[-1]
    m = frames[..., 0].numel()
    block = torch.empty((m, n_fft), dtype=dtype, device=frames.device)
    block[:, win:] = 0.0
    target = block[:, :win].view(*frames.shape)
    torch.sub(frames, dc[..., None], out=target)  # in float64, rounded once into the block's dtype
    target.mul_(window64 if dtype == torch.float64 else window32)
    spectrum = torch.view_as_real(torch.fft.rfft(block, dim=-1))
    # Squares in the FFT's precision; from here on float32 suffices (relative rounding of positive sums).
    power = spectrum[..., 0].square().addcmul_(spectrum[..., 1], spectrum[..., 1]).to(torch.float32)
    mel = torch.zeros((m, num_mel_bins), dtype=torch.float32, device=frames.device)
    for a, b, j0, j1, weights in bands:
        mel[:, j0:j1] = power[:, a:b] @ weights
    return mel


# --------------------------------------------------------------------------------------------------------
# Normalisations
# --------------------------------------------------------------------------------------------------------
def ast_normalize(fbank: torch.Tensor) -> torch.Tensor:
    """AudioSet statistics of the AST checkpoints: (x + 4.2677393) / (2 * 4.5689974)."""
    return (fbank - AST_MEAN) / (2.0 * AST_STD)


def per_sample_normalize(fbank: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """(x - mean) / (2 * std) per sample over time and frequency; (T, F) or (B, T, F).

    ``std`` is torch's default (Bessel-corrected), as in the reference CNN code. A sample whose std is
    below ``eps`` (a silent cycle: a constant filterbank) gives zeros instead of NaN or noise.
    """
    if fbank.ndim == 2:
        return per_sample_normalize(fbank.unsqueeze(0), eps)[0]
    batch = fbank.shape[0]
    n = fbank[0].numel()
    # Two passes (mean, then the spread of the centred values) instead of torch.var_mean, which is
    # 10x slower on CPU; centring first keeps the variance exact for near-constant inputs too.
    mean = fbank.reshape(batch, -1).sum(dim=1) / n
    centred = fbank - mean[:, None, None]
    std = torch.linalg.vector_norm(centred.reshape(batch, -1), dim=1) / math.sqrt(max(n - 1, 1))
    scale = torch.where(std > eps, 0.5 / std.clamp_min(eps), torch.zeros_like(std))
    return centred.mul_(scale[:, None, None])


# --------------------------------------------------------------------------------------------------------
# CLAP
# --------------------------------------------------------------------------------------------------------
CLAP_EXTRACTOR_ARGS: dict = {
    "feature_size": 64,
    "sampling_rate": 48000,
    "hop_length": 480,
    "max_length_s": 10,
    "fft_window_size": 1024,
    "padding_value": 0.0,
    "return_attention_mask": False,
    "frequency_min": 50,
    "frequency_max": 14000,
    "top_db": None,
    "truncation": "rand_trunc",
    "padding": "repeatpad",
}
"""Arguments of ``transformers.ClapFeatureExtractor`` mirroring laion/clap-htsat-unfused's preprocessor_config.

feature_size 64, sampling_rate 48000, hop_length 480, fft_window_size 1024, frequency_min 50,
frequency_max 14000, max_length_s 10, top_db None, padding "repeatpad", padding_value 0.0 and
return_attention_mask False are that file's values. truncation "rand_trunc" is the unfused
checkpoint's choice: "fusion" would stack four copies (4, 1001, 64), which the unfused audio tower
(one input channel) refuses; "rand_trunc" gives one (1, 1001, 64) with the Slaney mel filters. For
clips of at most 10 s it draws nothing at random. "repeatpad" tiles a clip int(10 s / length) times
and zero-pads the rest, so an 8 s cycle is one copy followed by 2 s of zeros: 1001 frames x 64.
"""

CLAP_FRAMES = CLAP_EXTRACTOR_ARGS["max_length_s"] * CLAP_EXTRACTOR_ARGS["sampling_rate"] // CLAP_EXTRACTOR_ARGS["hop_length"] + 1


@functools.lru_cache(maxsize=1)
def clap_extractor():
    """The ClapFeatureExtractor built from :data:`CLAP_EXTRACTOR_ARGS` (no hub access)."""
    from transformers import ClapFeatureExtractor

    return ClapFeatureExtractor(**CLAP_EXTRACTOR_ARGS)


def clap_features(waveforms_48k, method: str = "torch") -> torch.Tensor:
    """CLAP log-mel (dB) input of 48 kHz waveforms: (batch, 1001, 64) float32 (or (1001, 64) for one).

    ``method="extractor"`` runs ``transformers.ClapFeatureExtractor`` itself (numpy, one Python loop
    iteration per frame: ~0.1 s per cycle). ``method="torch"`` (default) computes the same thing batched
    on the input's device, with the extractor's own filters and window; the tests hold it to the
    extractor within 1e-3 dB on real recordings. Clips longer than 10 s are cut to their first 10 s,
    because the extractor would crop them at a random place. For the CLAP models, add the channel axis:
    ``features.unsqueeze(1)``.
    """
    x, single = _as_batch(waveforms_48k)
    limit = CLAP_EXTRACTOR_ARGS["max_length_s"] * CLAP_EXTRACTOR_ARGS["sampling_rate"]
    x = x[:, :limit]
    if x.shape[1] == 0:
        raise ValueError("clap_features: empty waveform")
    if method == "torch":
        result = _clap_torch(x)
    elif method == "extractor":
        waves = x.detach().cpu().to(torch.float64).numpy()
        extractor = clap_extractor()
        out = np.empty((waves.shape[0], CLAP_FRAMES, CLAP_EXTRACTOR_ARGS["feature_size"]), dtype=np.float32)
        for i, wave in enumerate(waves):
            mel, _ = extractor._get_input_mel(
                wave, limit, CLAP_EXTRACTOR_ARGS["truncation"], CLAP_EXTRACTOR_ARGS["padding"]
            )
            out[i] = mel[0]
        result = torch.from_numpy(out).to(x.device)
    else:
        raise ValueError(f"unknown method {method!r} (expected 'torch' or 'extractor')")
    return result[0] if single else result


@functools.lru_cache(maxsize=8)
def _clap_tables(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    extractor = clap_extractor()
    # "rand_trunc" uses the Slaney filters, "fusion" the HTK ones (ClapFeatureExtractor._get_input_mel).
    fusion = CLAP_EXTRACTOR_ARGS["truncation"] == "fusion"
    mel = extractor.mel_filters if fusion else extractor.mel_filters_slaney
    n_fft = CLAP_EXTRACTOR_ARGS["fft_window_size"]
    window = np.hanning(n_fft + 1)[:-1]  # window_function(n_fft, "hann"): periodic
    return (
        torch.from_numpy(window).to(device=device, dtype=torch.float64),
        torch.from_numpy(np.asarray(mel)).to(device=device, dtype=torch.float32).contiguous(),
    )


def _clap_torch(x: torch.Tensor, block: int = 2) -> torch.Tensor:
    """ClapFeatureExtractor's rand_trunc/repeatpad path for clips of at most 10 s, batched."""
    limit = CLAP_EXTRACTOR_ARGS["max_length_s"] * CLAP_EXTRACTOR_ARGS["sampling_rate"]
    n_fft, hop = CLAP_EXTRACTOR_ARGS["fft_window_size"], CLAP_EXTRACTOR_ARGS["hop_length"]
    window, mel = _clap_tables(str(x.device))
    batch, n = x.shape
    out = torch.empty((batch, CLAP_FRAMES, CLAP_EXTRACTOR_ARGS["feature_size"]), dtype=torch.float32, device=x.device)
    for b0 in range(0, batch, block):
        rows = x[b0 : b0 + block].to(torch.float64)
        if n < limit:
            if CLAP_EXTRACTOR_ARGS["padding"] == "repeatpad":
                rows = rows.repeat(1, limit // n)
            elif CLAP_EXTRACTOR_ARGS["padding"] == "repeat":
                rows = rows.repeat(1, limit // n + 1)[:, :limit]
            rows = torch.nn.functional.pad(rows, (0, limit - rows.shape[1]))
        # center=True with reflect padding, as the extractor's spectrogram() does.
        rows = torch.nn.functional.pad(rows[:, None], (n_fft // 2, n_fft // 2), mode="reflect")[:, 0]
        frames = rows.unfold(1, n_fft, hop) * window
        # The extractor keeps the FFT in complex64 before squaring; rounding the same way keeps the two
        # equal to float32 precision even in bins 100 dB below the loudest.
        spectrum = torch.view_as_real(torch.fft.rfft(frames, dim=-1).to(torch.complex64)).to(torch.float64)
        power = spectrum[..., 0].square().addcmul_(spectrum[..., 1], spectrum[..., 1]).to(torch.float32)
        db = (power @ mel).clamp_min_(1e-10).log10_().mul_(10.0)
        out[b0 : b0 + block] = db
    return out


# --------------------------------------------------------------------------------------------------------
# SpecAugment
# --------------------------------------------------------------------------------------------------------
def _mask_along(
    size: int, batch: int, masks: int, width: int, generator: torch.Generator | None, device
) -> torch.Tensor:
    """(batch, size) bool: the union of ``masks`` intervals per sample, widths uniform in [0, width]."""
    if masks <= 0 or width <= 0 or size == 0:
        return torch.zeros((batch, size), dtype=torch.bool, device=device)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    width = min(width, size)
    widths = torch.randint(0, width + 1, (batch, masks), generator=generator, device=gen_device)
    starts = (torch.rand((batch, masks), generator=generator, device=gen_device) * (size - widths + 1)).long()
    starts = torch.minimum(starts, size - widths)  # rand() < 1, but keep the bound exact
    widths, starts = widths.to(device), starts.to(device)
    index = torch.arange(size, device=device)
    inside = (index >= starts[..., None]) & (index < (starts + widths)[..., None])  # (batch, masks, size)
    return inside.any(dim=1)


def spec_augment(
    x: torch.Tensor,
    freq_masks: int = 2,
    freq_width: int = 48,
    time_masks: int = 2,
    time_width: int = 160,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment per sample (reference policy, no time warp) on (B, T, F); returns a new tensor.

    Each sample gets its own ``freq_masks`` frequency and ``time_masks`` time masks; each width is drawn
    uniformly from [0, width] (integers, clipped to the axis), each start uniformly where the mask fits.
    Masked cells take the sample's own spectrogram mean. Random numbers come from ``generator`` (or
    torch's global CPU generator) on the generator's device, so a seed gives the same masks on CPU and
    GPU inputs.
    """
    if x.ndim == 2:
        return spec_augment(x.unsqueeze(0), freq_masks, freq_width, time_masks, time_width, generator)[0]
    if x.ndim != 3:
        raise ValueError(f"spec_augment expects (batch, time, freq), got shape {tuple(x.shape)}")
    batch, frames, bins = x.shape
    freq = _mask_along(bins, batch, freq_masks, freq_width, generator, x.device)
    time_ = _mask_along(frames, batch, time_masks, time_width, generator, x.device)
    mask = time_[:, :, None] | freq[:, None, :]
    mean = x.mean(dim=(1, 2), keepdim=True)
    return torch.where(mask, mean.to(x.dtype), x)


# --------------------------------------------------------------------------------------------------------
# Feature sets
# --------------------------------------------------------------------------------------------------------
FEATURE_KINDS = ("fbank", "clap")
NORMALIZATIONS = ("per_sample", "ast", "none")


@dataclass(frozen=True)
class FeatureSet:
    """Every setting that decides a feature tensor; all of it goes into the cache key."""

    name: str
    kind: str
    prep: PrepSettings
    normalization: str = "none"
    num_mel_bins: int = 128
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    preemphasis: float = 0.97
    low_freq: float = 20.0
    high_freq: float = 0.0
    clap: tuple = ()
    version: int = FEATURE_VERSION

    def __post_init__(self):
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"unknown feature kind {self.kind!r} (expected one of {', '.join(FEATURE_KINDS)})")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {self.normalization!r}")
        if self.kind == "clap" and self.prep.sample_rate != CLAP_EXTRACTOR_ARGS["sampling_rate"]:
            raise ValueError("CLAP features need 48 kHz audio")

    @property
    def shape(self) -> tuple[int, int]:
        """(frames, bins) of one cycle."""
        if self.kind == "clap":
            return CLAP_FRAMES, CLAP_EXTRACTOR_ARGS["feature_size"]
        frames = fbank_frames(self.prep.target_samples, self.prep.sample_rate, self.frame_length_ms, self.frame_shift_ms)
        return frames, self.num_mel_bins

    def settings(self) -> dict:
        data = dataclasses.asdict(self)
        data["prep"] = dataclasses.asdict(self.prep)
        data["clap"] = dict(self.clap)
        if self.kind == "clap":
            # The extractor's numerics are transformers' code, not ours.
            data["transformers"] = _version("transformers")
        return data

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.settings(), sort_keys=True).encode()).hexdigest()

    def compute(self, waveforms, device: str | torch.device | None = None) -> torch.Tensor:
        """Features of prepared waveforms (batch, samples) at ``prep.sample_rate``: (batch, T, F) float32."""
        x = torch.as_tensor(waveforms)
        if device is not None:
            x = x.to(device)
        if self.kind == "clap":
            feats = clap_features(x if x.ndim == 2 else x[None])
        else:
            feats = kaldi_fbank(
                x if x.ndim == 2 else x[None],
                sample_rate=self.prep.sample_rate,
                num_mel_bins=self.num_mel_bins,
                frame_length_ms=self.frame_length_ms,
                frame_shift_ms=self.frame_shift_ms,
                preemphasis=self.preemphasis,
                low_freq=self.low_freq,
                high_freq=self.high_freq,
            )
        if self.normalization == "ast":
            feats = ast_normalize(feats)
        elif self.normalization == "per_sample":
            feats = per_sample_normalize(feats)
        return feats


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


FEATURE_SETS: dict[str, FeatureSet] = {
    "cnn": FeatureSet("cnn", "fbank", PrepSettings(sample_rate=16000), normalization="per_sample"),
    "ast": FeatureSet("ast", "fbank", PrepSettings(sample_rate=16000), normalization="ast"),
    "clap": FeatureSet(
        "clap",
        "clap",
        PrepSettings(sample_rate=48000),
        num_mel_bins=CLAP_EXTRACTOR_ARGS["feature_size"],
        clap=tuple(sorted(CLAP_EXTRACTOR_ARGS.items())),
    ),
}


def feature_set(name: str | FeatureSet) -> FeatureSet:
    if isinstance(name, FeatureSet):
        return name
    try:
        return FEATURE_SETS[name]
    except KeyError:
        raise FeatureError(f"unknown feature set {name!r} (expected one of {', '.join(FEATURE_SETS)})") from None


# --------------------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------------------
CACHE_FORMAT = 1
_TMP_MARK = ".tmp-"


@dataclass
class CachedFeatures:
    """Features of a cycle set, read from (or just written to) the project's cache."""

    features: torch.Tensor  # (N, T, F) float32, sharing memory with `array`
    array: np.ndarray  # the memory map of `path`
    path: Path
    hit: bool
    cycle_ids: list[int]
    feature_set: FeatureSet
    seconds: float = 0.0
    meta: dict = field(default_factory=dict)


def cache_dir(project) -> Path:
    return Path(project.artifacts) / "features"


def _cycle_ids(cycles) -> list[int]:
    ids = []
    for item in cycles:
        if isinstance(item, dict):
            ids.append(int(item["id"]))
        else:
            ids.append(int(item))
    return ids


def _fetch_rows(project, ids: Sequence[int]) -> dict[int, dict]:
    rows: dict[int, dict] = {}
    unique = sorted(set(ids))
    for i in range(0, len(unique), 900):  # SQLite's parameter limit
        part = unique[i : i + 900]
        marks = ",".join("?" * len(part))
        for row in project.query(
            f'SELECT c.id, c.recording_id, c.start, c."end" FROM cycles c WHERE c.id IN ({marks})', part
        ):
            rows[row["id"]] = row
    missing = [cid for cid in unique if cid not in rows]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise FeatureError(f"no cycles with id {shown} in {project.path}")
    return rows


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temps(folder: Path, max_age_s: float = 86400.0) -> None:
    """Temp files of writers that died (kill -9, power loss); a live writer's files are left alone."""
    for path in folder.glob(f"*{_TMP_MARK}*"):
        try:
            pid = int(path.name.split(_TMP_MARK, 1)[1].split("-", 1)[0])
        except (ValueError, IndexError):
            pid = -1
        try:
            old = time.time() - path.stat().st_mtime > max_age_s
            if old or pid == -1 or not _pid_alive(pid):
                path.unlink()
        except OSError:
            pass


def _temp_path(final: Path) -> Path:
    return final.with_name(f".{final.name}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = _temp_path(path)
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class _NpyRowWriter:
    """A float32 .npy file filled row by row with ordinary writes, then flushed to disk.

    Writing through a fresh memory map page-faults once per 4 KiB page, which measured 3 ms per cycle
    (as much as the filterbank) on a virtual machine; seek + write of whole rows costs a fraction.
    """

    def __init__(self, path: Path, shape: tuple[int, ...]):
        self.shape = shape
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * 4
        self.handle = open(path, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(self.handle, header)
        self.offset = self.handle.tell()
        self.handle.truncate(self.offset + self.row_bytes * shape[0])

    def write_rows(self, index: np.ndarray, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype="<f4")
        index = np.asarray(index, dtype=np.int64)
        if rows.shape != (len(index), *self.shape[1:]):
            raise ValueError(f"rows of shape {rows.shape} for {len(index)} indices of {self.shape}")
        # Runs of consecutive indices (the usual case: cycles listed recording by recording) in one write.
        breaks = np.nonzero(np.diff(index) != 1)[0] + 1
        for run in np.split(np.arange(len(index)), breaks):
            if run.size:
                self.handle.seek(self.offset + int(index[run[0]]) * self.row_bytes)
                self.handle.write(memoryview(rows[run[0] : run[-1] + 1]).cast("B"))

    def __enter__(self) -> "_NpyRowWriter":
        return self

    def __exit__(self, kind, *exc) -> None:
        try:
            if kind is None:
                self.handle.flush()
                os.fsync(self.handle.fileno())
        finally:
            self.handle.close()


def _open_cache(npy: Path, sidecar: Path, key: str, ids: list[int], shape: tuple) -> tuple[np.ndarray, dict] | None:
    """The cached array if the pair is complete, consistent and for exactly this key; else None."""
    if not (npy.exists() and sidecar.exists()):
        return None
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        if meta.get("key") != key or meta.get("cycle_ids") != ids or tuple(meta.get("shape", ())) != shape:
            return None
        # Copy-on-write: the file is never written through this map, and a caller that changes a batch
        # in place gets private pages instead of a crash on a read-only mapping.
        array = np.load(npy, mmap_mode="c")
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if array.shape != shape or array.dtype != np.float32:
        return None
    return array, meta


def ensure_features(
    project,
    set_name: str | FeatureSet,
    cycles: Iterable[dict | int],
    progress: ProgressFn | None = None,
    device: str | torch.device | None = None,
    chunk: int | None = None,
) -> CachedFeatures:
    """Features of the given cycles (rows from ``project.cycles`` or ids), in their order, via the cache.

    A hit opens the stored ``.npy`` memory-mapped. A miss reads and prepares each recording once
    (``prepare_recording_cycles``), computes the features in batches of ``chunk`` cycles (32 on CPU,
    256 on a GPU) on ``device`` (CPU by default), writes them to a temp file and renames it
    into place, so a killed run leaves no cache that could be mistaken for a complete one.

    Boundaries come from the project at call time, not from the rows passed in. Recordings whose audio
    is not available (status other than ``ok``, or a file whose content no longer matches its stored
    sha256) raise :class:`FeatureError` naming them: callers that want to go on without them pass
    ``project.cycles(with_audio=True)``. ``progress(done, total)`` counts cycles.
    """
    fs = feature_set(set_name)
    ids = _cycle_ids(cycles)
    frames, bins = fs.shape
    shape = (len(ids), frames, bins)
    if not ids:
        empty = np.zeros(shape, dtype=np.float32)
        return CachedFeatures(torch.from_numpy(empty), empty, Path(), False, [], fs)

    try:
        fingerprint = project.cycle_set_fingerprint(ids)
    except KeyError:  # an id the project does not have: let _fetch_rows name them all
        _fetch_rows(project, ids)
        raise
    key = hashlib.sha256(f"{fs.key()}\n{fingerprint}".encode()).hexdigest()
    folder = cache_dir(project)
    npy = folder / f"{fs.name}-{key[:24]}.npy"
    sidecar = npy.with_suffix(".json")
    opened = _open_cache(npy, sidecar, key, ids, shape)
    if opened is not None:
        array, meta = opened
        return CachedFeatures(torch.from_numpy(array), array, npy, True, ids, fs, meta=meta)

    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(folder)
    started = time.perf_counter()
    rows = _fetch_rows(project, ids)
    tmp = _temp_path(npy)
    try:
        with _NpyRowWriter(tmp, shape) as writer:
            _compute_into(project, fs, ids, rows, writer, progress, device, chunk)
        if project.cycle_set_fingerprint(ids) != fingerprint:
            raise FeatureError(
                "cycles or audio changed while their features were being computed; run it again"
            )
        os.replace(tmp, npy)
    finally:
        if tmp.exists():
            tmp.unlink()
    seconds = time.perf_counter() - started
    meta = {
        "format": CACHE_FORMAT,
        "set": fs.name,
        "key": key,
        "settings": fs.settings(),
        "fingerprint": fingerprint,
        "shape": list(shape),
        "dtype": "float32",
        "created_at": now(),
        "seconds": round(seconds, 3),
        "cycle_ids": ids,
    }
    _write_json_atomic(sidecar, meta)
    _fsync_dir(folder)
    _remove_superseded(folder, fs.name, ids, keep=npy)
    opened = _open_cache(npy, sidecar, key, ids, shape)
    if opened is None:  # only a concurrent writer deleting it could get here
        raise FeatureError(f"{npy}: feature cache vanished right after it was written")
    array, meta = opened
    return CachedFeatures(torch.from_numpy(array), array, npy, False, ids, fs, seconds, meta)


def load_features(
    project,
    set_name: str | FeatureSet,
    cycles: Iterable[dict | int],
    progress: ProgressFn | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """(N, T, F) float32 features of the cycles, in their order; see :func:`ensure_features`."""
    return ensure_features(project, set_name, cycles, progress=progress, device=device).features


def _remove_superseded(folder: Path, set_name: str, ids: list[int], keep: Path) -> None:
    """Drop older caches of the same set for the same cycle ids: after an edit they can never hit again
    (unless the edit is undone), and each can be gigabytes."""
    for sidecar in folder.glob(f"{set_name}-*.json"):
        npy = sidecar.with_suffix(".npy")
        if npy == keep:
            continue
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if meta.get("set") == set_name and meta.get("cycle_ids") == ids:
            for path in (sidecar, npy):
                try:
                    path.unlink()
                except OSError:  # mapped by another process on Windows: left for later
                    pass


def clear_cache(project, set_name: str | None = None) -> int:
    """Delete cached features (of one set, or all); returns the number of files removed."""
    folder = cache_dir(project)
    removed = 0
    if not folder.exists():
        return 0
    pattern = f"{set_name}-*" if set_name else "*"
    for path in folder.glob(pattern):
        if path.suffix in (".npy", ".json") or _TMP_MARK in path.name:
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def _compute_into(
    project,
    fs: FeatureSet,
    ids: list[int],
    rows: dict[int, dict],
    out: "_NpyRowWriter",
    progress: ProgressFn | None,
    device,
    chunk: int | None,
) -> None:
    if not chunk:
        # On CPU, arrays above glibc's 32 MiB mmap threshold are fresh pages on every allocation, and
        # faulting them in cost as much as the filterbank; 32 cycles (16 MiB of 16 kHz audio) stay below.
        on_gpu = device is not None and torch.device(device).type != "cpu"
        chunk = 256 if on_gpu else 32
    by_recording: dict[int, list[int]] = {}
    for index, cid in enumerate(ids):
        by_recording.setdefault(rows[cid]["recording_id"], []).append(index)
    recordings = {rid: project.recording(rid) for rid in by_recording}
    unavailable = [rec for rec in recordings.values() if rec.get("audio_status") != "ok" or not rec.get("path")]
    if unavailable:
        names = sorted(f"{rec['name']} ({rec.get('audio_status') or 'missing'})" for rec in unavailable)
        count = sum(len(by_recording[rec["id"]]) for rec in unavailable)
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        raise FeatureError(
            f"{count} cycles cannot be featurised: no usable audio for {len(names)} recordings: {shown}. "
            "Relocate the audio, or leave those cycles out with project.cycles(with_audio=True)."
        )

    total = len(ids)
    done = 0
    if progress is not None:
        progress(0, total)
    pending_waves: list[np.ndarray] = []
    pending_index: list[np.ndarray] = []
    pending = 0

    def flush() -> None:
        nonlocal pending, done
        if not pending:
            return
        waves = np.concatenate(pending_waves) if len(pending_waves) > 1 else pending_waves[0]
        index = np.concatenate(pending_index)
        for s in range(0, len(index), chunk):
            feats = fs.compute(torch.from_numpy(waves[s : s + chunk]), device=device)
            out.write_rows(index[s : s + chunk], feats.cpu().numpy())
            done += min(chunk, len(index) - s)
            if progress is not None:
                progress(done, total)
        pending_waves.clear()
        pending_index.clear()
        pending = 0

    for recording_id, indices in by_recording.items():
        rec = recordings[recording_id]
        path = project.audio_path(rec)
        if path is None or not path.exists():
            raise FeatureError(f"{rec['name']}: audio file not found at {path}")
        if rec.get("sha256") and file_sha256(path) != rec["sha256"]:
            raise FeatureError(
                f"{rec['name']}: {path} no longer has the content the project recorded (sha256 differs); "
                "verify or relocate the audio before computing features"
            )
        wave, sr = read_audio(path)
        spans = [(rows[ids[i]]["start"], rows[ids[i]]["end"]) for i in indices]
        pending_waves.append(prepare_recording_cycles(wave, sr, spans, fs.prep))
        pending_index.append(np.asarray(indices, dtype=np.int64))
        pending += len(indices)
        if pending >= chunk:
            flush()
    flush()


__all__ = [
    "AST_MEAN",
    "AST_STD",
    "CLAP_EXTRACTOR_ARGS",
    "CLAP_FRAMES",
    "FEATURE_SETS",
    "FEATURE_VERSION",
    "CachedFeatures",
    "FeatureError",
    "FeatureSet",
    "ast_normalize",
    "cache_dir",
    "clap_extractor",
    "clap_features",
    "clear_cache",
    "ensure_features",
    "fbank_frames",
    "feature_set",
    "kaldi_fbank",
    "kaldi_mel_banks",
    "load_features",
    "per_sample_normalize",
    "spec_augment",
]
