"""The Kaldi log-mel filterbank (the cnn and ast feature sets), batched: torch on CPU threads or a GPU, or numpy.

Waveforms are float in [-1, 1], exactly as :func:`trainer.audio.read_audio` returns them. They are
*not* scaled to 16-bit integers: ``transformers.ASTFeatureExtractor`` (whose numpy path is the reference
we test against) leaves its ``waveform * 2**15`` line commented out, and the AST checkpoints' AudioSet
statistics (mean -4.27, std 4.57) belong to that [-1, 1] scale. Integer arrays are refused rather than
guessed at (:func:`waveform_batch`, which the CLAP features share).

``kaldi_fbank`` equals the ASTFeatureExtractor numpy path (``_extract_fbank_features`` without
torchaudio, before its padding and normalisation) within 1e-6 on the real ICBHI recordings; the tests
hold it to 1e-3 (REFERENCE.md section 2). ``kaldi_fbank_numpy`` is the same computation in numpy
alone, for classification where torch is not installed (onnxruntime runs the model); it equals
``kaldi_fbank`` within 1e-6 on the same recordings. Without torch only the numpy path exists.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

try:
    import torch
except ImportError:  # the classify-only edition: kaldi_fbank_numpy serves it
    torch = None

# Kaldi floors the mel energies at float32 epsilon before the log.
KALDI_MEL_FLOOR = float(np.finfo(np.float32).eps)


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
# Powers below this are raised to it before the mel projection (numpy path): float32 subnormals make
# OpenBLAS 50x slower, and powers this small change no mel energy above KALDI_MEL_FLOOR.
POWER_FLOOR = 1e-30


@functools.lru_cache(maxsize=32)
def _mel_bands(num_mel_bins: int, n_fft: int, sample_rate: int, low_freq: float, high_freq: float) -> tuple:
    """The mel matrix as (first bin, end bin, first filter, end filter, float32 weights) bands.

    The mel matrix is 98 % zeros (each FFT bin feeds at most two filters), so it is applied as one small
    float32 matmul per group of ``MEL_GROUP`` neighbouring filters over just the FFT bins they touch: 8x
    fewer multiply-adds than the dense (257 x 128) product, and 3x faster on a CPU.
    """
    mel = kaldi_mel_banks(num_mel_bins, n_fft, sample_rate, low_freq, high_freq)
    bands = []
    for j0 in range(0, num_mel_bins, MEL_GROUP):
        j1 = min(num_mel_bins, j0 + MEL_GROUP)
        rows = np.nonzero(mel[:, j0:j1].any(axis=1))[0]
        if rows.size == 0:
            continue
        a, b = int(rows[0]), int(rows[-1]) + 1
        bands.append((a, b, j0, j1, np.ascontiguousarray(mel[a:b, j0:j1]).astype(np.float32)))
    return tuple(bands)


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
    """Window (float64 and float32) and banded mel matrix for one device, built once."""
    window = torch.from_numpy(np.hanning(win_length)).to(device=device)
    assert win_length < 2 or window[0].item() == 0.0  # _fbank_rows relies on it
    bands = tuple(
        (a, b, j0, j1, torch.from_numpy(weights).to(device=device))
        for a, b, j0, j1, weights in _mel_bands(num_mel_bins, n_fft, sample_rate, low_freq, high_freq)
    )
    return window, window.to(torch.float32), bands


def _check_waveform(is_float: bool, dtype, shape: tuple) -> None:
    if not is_float:
        raise TypeError(f"waveform must be float samples in [-1, 1], got {dtype} (convert integer PCM first)")
    if len(shape) not in (1, 2):
        raise ValueError(f"waveform must be (samples,) or (batch, samples), got shape {tuple(shape)}")


def waveform_batch(waveform) -> tuple[torch.Tensor, bool]:
    """``waveform`` as a float (batch, samples) tensor, and whether it was a single (samples,) one."""
    if isinstance(waveform, np.ndarray):
        _check_waveform(np.issubdtype(waveform.dtype, np.floating), waveform.dtype, waveform.shape)
        x = torch.from_numpy(np.ascontiguousarray(waveform))
    elif isinstance(waveform, torch.Tensor):
        _check_waveform(waveform.is_floating_point(), waveform.dtype, tuple(waveform.shape))
        x = waveform
    else:
        raise TypeError(f"waveform must be a numpy array or a torch tensor, got {type(waveform).__name__}")
    return (x.unsqueeze(0), True) if x.ndim == 1 else (x, False)


def fbank_frames(num_samples: int, sample_rate: int = 16000, frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0) -> int:
    """Frames Kaldi makes with snip_edges: 1 + (samples - window) // shift, or 0 if shorter than a window."""
    win, shift, _ = _geometry(sample_rate, frame_length_ms, frame_shift_ms)
    return 0 if num_samples < win else 1 + (num_samples - win) // shift


def _geometry(sample_rate: int, frame_length_ms: float, frame_shift_ms: float) -> tuple[int, int, int]:
    """Window and shift in samples, and the FFT size (the next power of two)."""
    win = int(sample_rate * frame_length_ms * 0.001)
    shift = int(sample_rate * frame_shift_ms * 0.001)
    return win, shift, 1 << (win - 1).bit_length()


def _blocks(batch: int, frames: int, block_frames: int, win: int, shift: int) -> list[tuple[slice, slice, slice]]:
    """(rows, frames, samples) of independent blocks that each fit in cache.

    Short inputs go several rows to a block; long recordings one slice of samples per block of frames.
    """
    if frames <= block_frames:
        rows = max(1, block_frames // frames)
        return [(slice(b0, min(batch, b0 + rows)), slice(0, frames), slice(None)) for b0 in range(0, batch, rows)]
    return [
        (slice(b, b + 1), slice(t0, min(frames, t0 + block_frames)), slice(t0 * shift, (min(frames, t0 + block_frames) - 1) * shift + win))
        for b in range(batch)
        for t0 in range(0, frames, block_frames)
    ]


def kaldi_fbank(
    waveform,
    sample_rate: int = 16000,
    num_mel_bins: int = 128,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    preemphasis: float = 0.97,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    fft_dtype: torch.dtype | None = None,
    block_frames: int | None = None,
    workers: int | None = None,
) -> torch.Tensor:
    """Kaldi-compatible log-mel filterbank, batched, on the input's device.

    ``waveform``: (samples,) or (batch, samples), numpy array or tensor, float in [-1, 1]. Returns float32
    (frames, num_mel_bins) or (batch, frames, num_mel_bins). Settings are Kaldi's / torchaudio's
    ``compliance.kaldi.fbank`` with ``window_type="hanning"``: symmetric Hann window (``np.hanning``,
    ``torch.hann_window(periodic=False)``), 512-point FFT for the 400-sample window, DC removal and
    pre-emphasis per frame, power spectrum, no dither, no energy, htk_compat, snip_edges.

    Pre-emphasis and DC removal run in float64. The FFT runs in ``fft_dtype``: float64 (default, None)
    reproduces the reference within 1e-6 on real recordings; float32 is ~1.4x faster overall, but its
    rounding (relative to the loudest part of a frame) reaches a few 1e-4 in quiet bands next to loud
    ones. (Redoing only the frames with such bands in float64 was tried: after pre-emphasis the lowest
    bands are that quiet in most frames, so it saved nothing.) Power spectrum, mel projection and log run
    in float32 (no measurable change).
    ``block_frames`` bounds the working set (default 1024 frames, one cycle, on CPU, so a block stays in
    the L2 cache; 2**18 on GPUs). On CPU, blocks run on ``workers`` threads (default
    ``torch.get_num_threads()``), each with single-threaded ops; see :func:`_run_blocks_in_threads`.
    """
    x, single = waveform_batch(waveform)
    fft_dtype = torch.float64 if fft_dtype is None else fft_dtype
    if fft_dtype not in (torch.float32, torch.float64):
        raise ValueError(f"fft_dtype must be torch.float32 or torch.float64, got {fft_dtype}")
    win, shift, n_fft = _geometry(sample_rate, frame_length_ms, frame_shift_ms)
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
    jobs = [(out[rows, span], x[rows, samples], span.stop - span.start)
            for rows, span, samples in _blocks(batch, frames, block_frames, win, shift)]

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


def kaldi_fbank_numpy(
    waveform,
    sample_rate: int = 16000,
    num_mel_bins: int = 128,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    preemphasis: float = 0.97,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    block_frames: int = 256,
    workers: int | None = None,
) -> np.ndarray:
    """:func:`kaldi_fbank` in numpy alone: the same settings and shapes, a float32 array.

    The FFT runs in float64, the reference's precision, which numpy's FFT computes faster than float32
    (measured 1.0 against 6.8 ms for one cycle's 798 frames). Blocks of ``block_frames`` frames run on
    ``workers`` threads (default: one per CPU); numpy releases the GIL in its FFT, matmul and loops.
    """
    x = np.asarray(waveform)
    _check_waveform(np.issubdtype(x.dtype, np.floating), x.dtype, x.shape)
    single = x.ndim == 1
    x = x[None] if single else x
    win, shift, n_fft = _geometry(sample_rate, frame_length_ms, frame_shift_ms)
    batch, n = x.shape
    frames = fbank_frames(n, sample_rate, frame_length_ms, frame_shift_ms)
    out = np.empty((batch, frames, num_mel_bins), dtype=np.float32)
    if frames == 0 or batch == 0:
        return out[0] if single else out
    window = np.hanning(win)
    bands = _mel_bands(int(num_mel_bins), n_fft, int(sample_rate), float(low_freq), float(high_freq))
    jobs = [(x[rows, samples], out[rows, span]) for rows, span, samples in _blocks(batch, frames, block_frames, win, shift)]

    def run(job) -> None:
        _numpy_rows(*job, window, bands, shift, n_fft, float(preemphasis))

    workers = max(1, min(int(workers or os.cpu_count() or 1), len(jobs)))
    if workers == 1:  # on this thread, which keeps its _frame_block between calls
        list(map(run, jobs))
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, jobs))
    return out[0] if single else out


_scratch = threading.local()


def _frame_block(m: int, win: int, n_fft: int) -> np.ndarray:
    """This thread's (m, n_fft) float64 FFT input, zero from column ``win`` on (kept: no page faults per call)."""
    blocks = _scratch.__dict__.setdefault("blocks", {})
    block = blocks.get((win, n_fft))
    if block is None or block.shape[0] < m:
        block = blocks[(win, n_fft)] = np.zeros((m, n_fft))
    return block[:m]


def _numpy_rows(x, out, window, bands, shift: int, n_fft: int, preemphasis: float) -> None:
    """Filterbank of a few rows of samples into ``out`` (rows, frames, bins): :func:`_fbank_rows` in numpy."""
    rows, frames, num_mel_bins = out.shape
    win = window.size
    used = (frames - 1) * shift + win
    x64 = x[:, :used].astype(np.float64)
    # Frame sums from gcd(win, shift)-sample segments, pre-emphasis of the whole signal and the DC as
    # (1 - p) * mean: see _fbank_rows.
    g = math.gcd(win, shift)
    per_frame, step = win // g, shift // g
    segments = x64.reshape(rows, used // g, g).sum(axis=-1)
    last = (frames - 1) * step + 1
    sums = segments[:, 0:last:step].copy()
    for i in range(1, per_frame):
        sums += segments[:, i : i + last : step]
    dc = sums * ((1.0 - preemphasis) / win)
    z = np.empty_like(x64)
    z[:, 0] = x64[:, 0] * (1.0 - preemphasis)
    np.multiply(x64[:, :-1], preemphasis, out=z[:, 1:])
    np.subtract(x64[:, 1:], z[:, 1:], out=z[:, 1:])
    framed = np.lib.stride_tricks.as_strided(z, (rows, frames, win), (z.strides[0], shift * z.itemsize, z.itemsize), writeable=False)
    block = _frame_block(rows * frames, win, n_fft)
    target = block[:, :win].reshape(rows, frames, win, copy=False)
    np.subtract(framed, dc[..., None], out=target)
    np.multiply(target, window, out=target)
    spectrum = np.fft.rfft(block, axis=-1)
    parts = spectrum.view(np.float64)
    np.square(parts, out=parts)
    power = np.add(parts[:, 0::2], parts[:, 1::2], out=np.empty((rows * frames, n_fft // 2 + 1), np.float32))
    np.maximum(power, POWER_FLOOR, out=power)
    mel = out.reshape(rows * frames, num_mel_bins, copy=False)
    if sum(band[3] - band[2] for band in bands) < num_mel_bins:  # filters no FFT bin reaches
        mel.fill(0.0)
    for a, b, j0, j1, weights in bands:
        np.matmul(power[:, a:b], weights, out=mel[:, j0:j1])
    np.maximum(mel, KALDI_MEL_FLOOR, out=mel)
    np.log(mel, out=mel)
