"""The other two representations of a cycle (stft and mfcc sets), in torch and in numpy alone.

* ``stft``: the linear-frequency log power spectrum of the Kaldi frames the fbank sets use (25 ms
  symmetric Hann window, 10 ms shift, 512-point FFT, DC removal and pre-emphasis 0.97 per frame,
  snip_edges), without the mel projection. The 256 bins below Nyquist are summed in neighbouring
  pairs into 128 bins of 31.25 Hz * 2 = 62.5 Hz each (Nyquist dropped), so a cycle is (798, 128), the
  shape of the cnn set: every model built for the cnn shape reads it, at the same cost. The log of a
  power is twice the log of the magnitude; per-sample normalisation removes that factor, so after it
  the set is the normalised log magnitude.
* ``mfcc``: the orthonormal DCT-II over the 128 bins of the Kaldi log-mel filterbank (the cnn set's
  filterbank, imported from :mod:`.filterbank`), its first ``coefficients`` kept (c0 included).

The numpy path (:func:`spectra_numpy`) is for classification without torch (onnxruntime runs the
model); it equals the torch path within 1e-4 on real recordings (tests).
"""

from __future__ import annotations

import functools

import numpy as np

from .filterbank import KALDI_MEL_FLOOR, fbank_frames, kaldi_fbank, kaldi_fbank_numpy

try:
    import torch
except ImportError:  # the classify-only edition: spectra_numpy serves it
    torch = None

SPECTRA_KINDS = ("stft", "mfcc")


def _geometry(sample_rate: int, frame_length_ms: float, frame_shift_ms: float) -> tuple[int, int, int]:
    """Window and shift in samples and the FFT size (next power of two), as the filterbank makes them."""
    win = int(sample_rate * frame_length_ms * 0.001)
    shift = int(sample_rate * frame_shift_ms * 0.001)
    return win, shift, 1 << (win - 1).bit_length()


def stft_pool(bins: int, n_fft: int) -> int:
    """How many neighbouring FFT bins (of the n_fft // 2 below Nyquist) make one of ``bins`` output bins."""
    below = n_fft // 2
    if bins < 1 or below % bins:
        raise ValueError(f"stft: {bins} bins do not divide the {below} FFT bins below Nyquist")
    return below // bins


@functools.lru_cache(maxsize=8)
def dct_matrix(num_mel_bins: int, coefficients: int) -> np.ndarray:
    """Orthonormal DCT-II as a (num_mel_bins, coefficients) float64 matrix: log-mel rows @ it = MFCCs."""
    if not 1 <= coefficients <= num_mel_bins:
        raise ValueError(f"mfcc: {coefficients} coefficients from {num_mel_bins} mel bins")
    m = np.arange(num_mel_bins, dtype=np.float64)[:, None]
    k = np.arange(coefficients, dtype=np.float64)[None, :]
    basis = np.cos(np.pi * k * (2.0 * m + 1.0) / (2.0 * num_mel_bins)) * np.sqrt(2.0 / num_mel_bins)
    basis[:, 0] /= np.sqrt(2.0)
    return basis


def stft_log_power(
    waveform, sample_rate: int = 16000, bins: int = 128, frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0, preemphasis: float = 0.97, chunk_frames: int = 4096,
) -> torch.Tensor:
    """Log power of the Kaldi frames on linear frequency, pooled to ``bins``: float32 (B, T, bins) or (T, bins).

    The FFT runs in float64 (the fbank reference's precision), ``chunk_frames`` frames at a time to
    bound memory.
    """
    from .filterbank import waveform_batch

    x, single = waveform_batch(waveform)
    win, shift, n_fft = _geometry(sample_rate, frame_length_ms, frame_shift_ms)
    pool = stft_pool(bins, n_fft)
    batch, n = x.shape
    frames = fbank_frames(n, sample_rate, frame_length_ms, frame_shift_ms)
    out = torch.empty((batch, frames, bins), dtype=torch.float32, device=x.device)
    if frames and batch:
        window = torch.from_numpy(np.hanning(win)).to(x.device)
        rows = max(1, chunk_frames // frames)
        for b0 in range(0, batch, rows):
            framed = x[b0 : b0 + rows, : (frames - 1) * shift + win].to(torch.float64).unfold(1, win, shift)
            framed = framed - framed.mean(dim=-1, keepdim=True)
            emphasised = torch.cat([framed[..., :1] * (1.0 - preemphasis),
                                    framed[..., 1:] - preemphasis * framed[..., :-1]], dim=-1)
            spectrum = torch.fft.rfft(emphasised * window, n=n_fft, dim=-1)
            power = spectrum.real.square() + spectrum.imag.square()
            pooled = power[..., : n_fft // 2].reshape(*power.shape[:-1], bins, pool).sum(dim=-1)
            out[b0 : b0 + rows] = pooled.clamp_min(KALDI_MEL_FLOOR).log().to(torch.float32)
    return out[0] if single else out


def mfcc(
    waveform, sample_rate: int = 16000, num_mel_bins: int = 128, coefficients: int = 64,
    frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0, preemphasis: float = 0.97,
    low_freq: float = 20.0, high_freq: float = 0.0,
) -> torch.Tensor:
    """MFCCs: the orthonormal DCT-II of :func:`kaldi_fbank`'s log-mel rows, first ``coefficients`` kept."""
    fbank = kaldi_fbank(waveform, sample_rate=sample_rate, num_mel_bins=num_mel_bins, frame_length_ms=frame_length_ms,
                        frame_shift_ms=frame_shift_ms, preemphasis=preemphasis, low_freq=low_freq, high_freq=high_freq)
    basis = torch.from_numpy(dct_matrix(num_mel_bins, coefficients)).to(device=fbank.device, dtype=torch.float32)
    return fbank @ basis


def spectra(kind: str, waveform, settings: dict, sample_rate: int) -> torch.Tensor:
    """Features of ``kind`` (stft or mfcc) with a feature set's settings, unnormalised, in torch."""
    if kind == "stft":
        return stft_log_power(waveform, sample_rate, settings["output_bins"], settings["frame_length_ms"],
                              settings["frame_shift_ms"], settings["preemphasis"])
    if kind == "mfcc":
        return mfcc(waveform, sample_rate, settings["num_mel_bins"], settings["output_bins"], settings["frame_length_ms"],
                    settings["frame_shift_ms"], settings["preemphasis"], settings["low_freq"], settings["high_freq"])
    raise ValueError(f"unknown spectral kind {kind!r} (expected one of {', '.join(SPECTRA_KINDS)})")


def spectra_numpy(waves, settings: dict, sample_rate: int) -> np.ndarray:
    """:func:`spectra` in numpy alone, from a feature set's settings (a model card's ``features``): float32.

    This is what torch-free classification of an exported stft or mfcc model computes before the
    model's graph (which holds the normalisation).
    """
    kind = settings["kind"]
    x = np.asarray(waves, dtype=np.float64)
    single = x.ndim == 1
    x = x[None] if single else x
    if kind == "mfcc":
        fbank = kaldi_fbank_numpy(x, sample_rate=sample_rate, num_mel_bins=settings["num_mel_bins"],
                                  frame_length_ms=settings["frame_length_ms"], frame_shift_ms=settings["frame_shift_ms"],
                                  preemphasis=settings["preemphasis"], low_freq=settings["low_freq"],
                                  high_freq=settings["high_freq"])
        out = (fbank.astype(np.float64) @ dct_matrix(settings["num_mel_bins"], settings["output_bins"])).astype(np.float32)
        return out[0] if single else out
    if kind != "stft":
        raise ValueError(f"unknown spectral kind {kind!r} (expected one of {', '.join(SPECTRA_KINDS)})")
    win, shift, n_fft = _geometry(sample_rate, settings["frame_length_ms"], settings["frame_shift_ms"])
    bins, p = settings["output_bins"], settings["preemphasis"]
    pool = stft_pool(bins, n_fft)
    frames = fbank_frames(x.shape[1], sample_rate, settings["frame_length_ms"], settings["frame_shift_ms"])
    out = np.empty((x.shape[0], frames, bins), dtype=np.float32)
    window = np.hanning(win)
    for b in range(x.shape[0]):
        framed = np.lib.stride_tricks.sliding_window_view(x[b, : (frames - 1) * shift + win], win)[::shift]
        framed = framed - framed.mean(axis=-1, keepdims=True)
        emphasised = np.concatenate([framed[:, :1] * (1.0 - p), framed[:, 1:] - p * framed[:, :-1]], axis=-1)
        spectrum = np.fft.rfft(emphasised * window, n=n_fft, axis=-1)
        power = spectrum.real**2 + spectrum.imag**2
        pooled = power[:, : n_fft // 2].reshape(frames, bins, pool).sum(axis=-1)
        out[b] = np.log(np.maximum(pooled, KALDI_MEL_FLOOR))
    return out[0] if single else out
