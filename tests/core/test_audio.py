"""Cycle preparation exactly as REFERENCE.md section 1."""

import numpy as np
import pytest
import soundfile as sf

from trainer.audio import (
    AudioError, PrepSettings, audio_info, cut_or_pad, fade_in_out, prepare_cycles, prepare_recording_cycles, read_audio,
)


def test_fade_matches_torchaudio_linear_fade():
    x = np.ones(100, dtype=np.float32)
    y = fade_in_out(x, 10)
    assert np.allclose(y[:10], np.linspace(0, 1, 10)) and np.allclose(y[-10:], np.linspace(1, 0, 10))
    assert np.all(y[10:90] == 1)


def test_cut_keeps_the_first_eight_seconds():
    x = np.arange(20, dtype=np.float32)
    assert np.array_equal(cut_or_pad(x, 8), x[:8])


def test_repeat_pad_tiles_then_fades_out():
    x = np.arange(1, 4, dtype=np.float32)  # 1 2 3
    y = cut_or_pad(x, 8, "repeat", fade=4)
    tiled = np.array([1, 2, 3, 1, 2, 3, 1, 2], dtype=np.float32)
    assert np.allclose(y[:4], tiled[:4])
    assert np.allclose(y[4:], tiled[4:] * np.linspace(1, 0, 4))


def test_zero_pad_centres():
    y = cut_or_pad(np.ones(3, dtype=np.float32), 8, "zero")
    assert np.array_equal(y, np.array([0, 0, 1, 1, 1, 0, 0, 0], dtype=np.float32))
    with pytest.raises(ValueError):
        cut_or_pad(np.ones(3), 8, "mirror")


def test_prepared_cycle_is_sliced_after_the_whole_recording_fade():
    sr = 16000
    wave = np.ones(sr * 10, dtype=np.float32)
    [cycle] = prepare_recording_cycles(wave, sr, [(0.0, 9.0)], PrepSettings(sample_rate=sr))
    fade = sr // 16
    assert cycle.shape == (8 * sr,)
    assert np.allclose(cycle[:fade], np.linspace(0, 1, fade))  # the recording's fade-in shows at its start
    assert np.all(cycle[fade:] == 1)  # cut at 8 s: no fade-out inside
    [short] = prepare_recording_cycles(wave, sr, [(2.0, 5.0)], PrepSettings(sample_rate=sr))
    assert np.allclose(short[-fade:], np.linspace(1, 0, fade))  # tiled, then faded out
    assert np.all(short[: 3 * sr] == 1)


def test_resampling_keeps_a_tone(tmp_path):
    sr = 44100
    t = np.arange(sr * 2) / sr
    sf.write(tmp_path / "tone.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr, subtype="PCM_24")
    wave, rate = read_audio(tmp_path / "tone.wav")
    [cycle] = prepare_recording_cycles(wave, rate, [(0.5, 1.5)], PrepSettings(sample_rate=16000, fade=False))
    spectrum = np.abs(np.fft.rfft(cycle[:16000]))
    assert abs(np.argmax(spectrum) - 440) <= 1


def test_real_recordings_prepare_at_16k_and_48k(icbhi_dir):
    path = icbhi_dir / "ICBHI_final_database" / "104_1b1_Al_sc_Litt3200.wav"  # 4 kHz
    wave, sr = read_audio(path)
    assert sr == 4000
    for rate in (16000, 48000):
        out = prepare_recording_cycles(wave, sr, [(0.5, 3.0), (3.0, 12.5)], PrepSettings(sample_rate=rate))
        assert out.shape == (2, 8 * rate) and np.isfinite(out).all() and np.abs(out).max() > 1e-3


def test_audio_errors_name_the_file(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav: empty file"):
        audio_info(empty)
    with pytest.raises(AudioError, match="missing.wav: file not found"):
        read_audio(tmp_path / "missing.wav")


def test_prepare_cycles_reads_each_recording_once(synth_project, monkeypatch):
    import trainer.audio as audio

    calls = []
    real = audio.read_audio
    monkeypatch.setattr(audio, "read_audio", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    rows = synth_project.cycles(split="train")
    out = prepare_cycles(synth_project, rows)
    assert out.shape == (len(rows), 128000)
    assert len(calls) == len({r["recording_id"] for r in rows})


@pytest.mark.parametrize("bad, words", [(np.nan, "not a number (NaN)"), (np.inf, "infinite"), (-np.inf, "infinite")])
def test_non_finite_samples_are_refused_with_their_position(tmp_path, bad, words):
    from trainer.audio import scan_samples

    x = np.zeros((40000, 2), dtype=np.float32)
    x[30001, 1] = bad
    path = tmp_path / "float.wav"
    sf.write(path, x, 4000, subtype="FLOAT")
    expected = f"float.wav: sample 30001 of channel 2 (at 7.500 s) is {words}"
    with pytest.raises(AudioError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        scan_samples(path, block_frames=4096)  # the bad sample in the eighth block
    with pytest.raises(AudioError, match="sample 30001 of channel 2"):
        read_audio(path)


def test_a_double_beyond_float32_range_is_refused_and_pcm_is_not_scanned(tmp_path):
    from trainer.audio import scan_samples

    x = np.zeros(8000)
    x[5] = 1e300
    sf.write(tmp_path / "double.wav", x, 4000, subtype="DOUBLE")
    with pytest.raises(AudioError, match="sample 5 .* is 1e\\+300, beyond 32-bit float range"):
        scan_samples(tmp_path / "double.wav")
    sf.write(tmp_path / "pcm.wav", np.full(8000, 0.5), 4000, subtype="PCM_16")
    assert scan_samples(tmp_path / "pcm.wav") is None
    sf.write(tmp_path / "loud.wav", np.full(8000, 3.0, dtype=np.float32), 4000, subtype="FLOAT")
    assert scan_samples(tmp_path / "loud.wav") == 3.0
