"""The stft and mfcc feature sets: shapes, an independent numpy reference on a real recording, cache keys."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch

from trainer.audio import PrepSettings, prepare_recording_cycles, read_audio
from trainer.features.sets import FEATURE_SETS
from trainer.features.spectra import spectra_numpy


@pytest.fixture(scope="module")
def one_recording(icbhi_dir) -> np.ndarray:
    """The annotated cycles of the first real ICBHI recording, prepared the reference way (16 kHz, 8 s)."""
    wav = sorted((icbhi_dir / "ICBHI_final_database").glob("*.wav"))[0]
    lines = wav.with_suffix(".txt").read_text().split("\n")
    spans = [tuple(map(float, line.split()[:2])) for line in lines if line.strip()]
    samples, rate = read_audio(wav)
    return prepare_recording_cycles(samples, rate, spans, PrepSettings())[:4]


def reference_stft(wave: np.ndarray, bins: int = 128) -> np.ndarray:
    """Frame by frame from the definitions: Kaldi framing (400 / 160 samples, snip edges), DC removal,
    pre-emphasis 0.97, the symmetric Hann formula, a 512-point complex FFT, |X|^2, bins summed in pairs."""
    win, shift, n_fft = 400, 160, 512
    n = np.arange(win)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / (win - 1))
    frames = 1 + (len(wave) - win) // shift
    out = np.empty((frames, bins))
    for t in range(frames):
        frame = wave[t * shift : t * shift + win].astype(np.float64)
        frame = frame - frame.mean()
        frame = np.append(frame[0] - 0.97 * frame[0], frame[1:] - 0.97 * frame[:-1])
        power = np.abs(np.fft.fft(frame * hann, n_fft)) ** 2
        pooled = power[: n_fft // 2].reshape(bins, -1).sum(axis=1)
        out[t] = np.log(np.maximum(pooled, np.finfo(np.float32).eps))
    return out


def reference_dct(logmel: np.ndarray, keep: int) -> np.ndarray:
    """Orthonormal DCT-II written out as its sum: c_k = s_k * sum_m x_m cos(pi k (2m + 1) / 2M)."""
    m_bins = logmel.shape[-1]
    out = np.zeros((*logmel.shape[:-1], keep))
    for k in range(keep):
        scale = np.sqrt(1.0 / m_bins) if k == 0 else np.sqrt(2.0 / m_bins)
        cos = np.cos(np.pi * k * (2 * np.arange(m_bins) + 1) / (2 * m_bins))
        out[..., k] = scale * (logmel * cos).sum(axis=-1)
    return out


def test_stft_and_mfcc_sets_have_the_shapes_their_table_gives():
    waves = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, (3, 128000)).astype(np.float32))
    for name, shape in (("stft", (798, 128)), ("mfcc", (798, 64))):
        fs = FEATURE_SETS[name]
        feats = fs.compute(waves)
        assert fs.shape == shape and tuple(feats.shape) == (3, *shape) and feats.dtype == torch.float32
        # per-sample normalisation as in the cnn set: mean 0, std 1/2 per cycle
        assert feats.mean(dim=(1, 2)).abs().max() < 1e-4
        assert (feats.std(dim=(1, 2)) - 0.5).abs().max() < 1e-3


def test_stft_equals_a_frame_by_frame_numpy_reference_on_a_real_recording(one_recording):
    ours = FEATURE_SETS["stft"].compute(one_recording[:2]).numpy()
    raw = spectra_numpy(one_recording[:2], FEATURE_SETS["stft"].settings(), 16000)
    for i in range(2):
        reference = reference_stft(one_recording[i])
        np.testing.assert_allclose(raw[i], reference, atol=1e-4, rtol=0)
        centred = reference - reference.mean()
        np.testing.assert_allclose(ours[i], centred / (2 * centred.std(ddof=1)), atol=1e-4, rtol=0)


def test_mfcc_equals_the_dct_of_the_reference_filterbank_on_a_real_recording(one_recording):
    import warnings

    from transformers.models.audio_spectrogram_transformer import (
        feature_extraction_audio_spectrogram_transformer as module,
    )

    patch = pytest.MonkeyPatch()
    patch.setattr(module, "is_speech_available", lambda: False)  # its numpy path, not torchaudio
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extractor = module.ASTFeatureExtractor()
    try:
        logmel = np.stack([extractor._extract_fbank_features(w, max_length=798) for w in one_recording[:2]])
    finally:
        patch.undo()
    reference = reference_dct(logmel.astype(np.float64), 64)
    raw = spectra_numpy(one_recording[:2], FEATURE_SETS["mfcc"].settings(), 16000)
    np.testing.assert_allclose(raw, reference, atol=2e-3, rtol=0)
    torch_raw = FEATURE_SETS["mfcc"].compute(one_recording[:2])
    centred = reference - reference.mean(axis=(1, 2), keepdims=True)
    expected = centred / (2 * centred.reshape(2, -1).std(axis=1, ddof=1)[:, None, None])
    np.testing.assert_allclose(torch_raw.numpy(), expected, atol=1e-4, rtol=0)


def test_the_cache_keys_of_the_sets_before_the_spectral_ones_hash_only_their_old_settings():
    """A key is the hash of a set's settings; the field the spectral kinds added must stay out of the
    older sets' settings, or every cache written before them would miss."""
    for name in ("cnn", "ast", "clap"):
        fs = FEATURE_SETS[name]
        old = {f.name: getattr(fs, f.name) for f in dataclasses.fields(fs) if f.name not in ("family", "output_bins")}
        old["prep"], old["clap"] = dataclasses.asdict(fs.prep), dict(fs.clap)
        if fs.kind == "clap":
            old["transformers"] = fs.settings()["transformers"]
        assert fs.output_bins == 0 and "output_bins" not in fs.settings()
        assert fs.key() == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()
    keys = [fs.key() for fs in FEATURE_SETS.values()]
    assert len(set(keys)) == len(keys)


def test_a_spectral_set_without_output_bins_is_refused():
    with pytest.raises(ValueError, match="output_bins"):
        dataclasses.replace(FEATURE_SETS["stft"], output_bins=0)
    with pytest.raises(ValueError, match="output_bins"):
        dataclasses.replace(FEATURE_SETS["cnn"], output_bins=64)


def test_an_exported_stft_model_gives_its_torch_logits_from_the_numpy_features(tmp_path):
    """What torch-free classification computes (spectra_numpy from the card, then the ONNX graph, which holds
    the normalisation) equals the model on the torch features. (mfcc goes the same way; its numpy path
    is held to the reference above, and each export costs seconds.)"""
    name = "stft"
    import onnxruntime as ort

    from trainer.infer.export import export_model
    from trainer.models import create_model

    torch.manual_seed(0)
    model = create_model("cnn6-tiny", feature_set=name, channels=[2, 4, 8, 16]).eval()
    card = export_model(model, tmp_path / f"{name}.onnx")
    assert card["features"]["kind"] == name and card["model"]["inputs"][0]["shape"][1:] == list(FEATURE_SETS[name].shape)
    waves = np.random.default_rng(1).normal(0, 0.1, (2, 128000)).astype(np.float32)
    raw = spectra_numpy(waves, card["features"], card["prep"]["sample_rate"])
    onnx = ort.InferenceSession(str(tmp_path / f"{name}.onnx")).run(None, {"features": raw})[0]
    with torch.no_grad():
        expected = model(FEATURE_SETS[name].compute(torch.from_numpy(waves))).numpy()
    np.testing.assert_allclose(onnx, expected, atol=1e-4, rtol=0)
