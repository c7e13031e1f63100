"""CLAP's log-mel input (the clap feature set): the transformers extractor's settings and a batched torch path.

``clap_features`` equals ``transformers.ClapFeatureExtractor`` (set up like laion/clap-htsat-unfused)
within 1e-5 dB, ten times faster.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .filterbank import waveform_batch

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
    x, single = waveform_batch(waveforms_48k)
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


