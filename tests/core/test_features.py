"""Feature layer: Kaldi filterbank against transformers' reference, normalisations, CLAP, SpecAugment, cache."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from trainer import features as F
from trainer.audio import PrepSettings, audio_info, prepare_cycles, prepare_recording_cycles, read_audio
from trainer.features.clap import CLAP_EXTRACTOR_ARGS
from trainer.features.filterbank import KALDI_MEL_FLOOR, kaldi_mel_banks
from trainer.project import Project, file_sha256

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


# --------------------------------------------------------------------------------------------------------
# Real ICBHI cycles and the reference extractor
# --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def icbhi_cycles(icbhi_dir) -> np.ndarray:
    """Every annotated cycle of the real recordings, prepared the reference way (16 kHz, fade, 8 s)."""
    waves = []
    for wav in sorted((icbhi_dir / "ICBHI_final_database").glob("*.wav")):
        lines = wav.with_suffix(".txt").read_text().split("\n")
        spans = [tuple(map(float, line.split()[:2])) for line in lines if line.strip()]
        samples, rate = read_audio(wav)
        waves.append(prepare_recording_cycles(samples, rate, spans, PrepSettings()))
    if not waves:
        pytest.skip(f"no wav files under {icbhi_dir}")
    return np.concatenate(waves)


@pytest.fixture(scope="module")
def ast_numpy_extractor():
    """transformers' ASTFeatureExtractor forced onto its numpy path (the one without torchaudio)."""
    import warnings

    from transformers.models.audio_spectrogram_transformer import (
        feature_extraction_audio_spectrogram_transformer as module,
    )

    patch = pytest.MonkeyPatch()
    patch.setattr(module, "is_speech_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "a mel filter has all zero values": the lowest Kaldi bands at 20 Hz
        extractor = module.ASTFeatureExtractor()
    yield extractor
    patch.undo()


def test_fbank_equals_ast_extractor_numpy_path_on_real_recordings(icbhi_cycles, ast_numpy_extractor):
    ours = F.kaldi_fbank(icbhi_cycles).numpy()
    reference = np.stack([ast_numpy_extractor._extract_fbank_features(w, max_length=798) for w in icbhi_cycles])
    assert ours.shape == reference.shape == (len(icbhi_cycles), 798, 128)
    assert ours.dtype == np.float32
    error = np.abs(ours - reference).max()
    assert error < 1e-3, f"max abs difference {error}"
    # The normalised inputs the AST model sees match too (the extractor's normalize, AudioSet stats).
    normalised = F.ast_normalize(torch.from_numpy(ours)).numpy()
    assert np.abs(normalised - ast_numpy_extractor.normalize(reference)).max() < 1e-3


def test_window_and_mel_match_the_extractor(ast_numpy_extractor):
    assert np.array_equal(np.hanning(400), ast_numpy_extractor.window)
    ours = kaldi_mel_banks(128, 512, 16000, 20.0, 0.0)
    assert ours.shape == ast_numpy_extractor.mel_filters.shape == (257, 128)
    assert np.abs(ours - ast_numpy_extractor.mel_filters).max() < 1e-12


def test_float32_fft_stays_close(icbhi_cycles):
    fast = F.kaldi_fbank(icbhi_cycles[:16], fft_dtype=torch.float32)
    exact = F.kaldi_fbank(icbhi_cycles[:16])
    assert (fast - exact).abs().max().item() < 2e-3


def test_eight_seconds_give_798_frames():
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(128000)).astype(np.float32)
    assert F.fbank_frames(128000) == 798
    assert F.kaldi_fbank(wave).shape == (798, 128)
    assert F.kaldi_fbank(wave[:399]).shape == (0, 128)  # shorter than one window: no frame (snip_edges)
    assert F.kaldi_fbank(wave[:400]).shape == (1, 128)


def test_batched_equals_unbatched_and_input_kinds(icbhi_cycles):
    batch = icbhi_cycles[:5]
    together = F.kaldi_fbank(batch)
    assert together.shape == (5, 798, 128)
    for i in range(5):
        alone = F.kaldi_fbank(batch[i])
        assert torch.equal(alone, together[i])
    assert torch.equal(F.kaldi_fbank(torch.from_numpy(batch)), together)
    assert (F.kaldi_fbank(batch.astype(np.float64)) - together).abs().max() < 1e-5
    # Small blocks (the path long recordings take) give the same numbers.
    long = batch.reshape(-1)[:300000]
    assert (F.kaldi_fbank(long, block_frames=500) - F.kaldi_fbank(long)).abs().max() < 1e-5


def test_fbank_refuses_integer_pcm_and_bad_shapes():
    with pytest.raises(TypeError, match="float"):
        F.kaldi_fbank(np.zeros(16000, dtype=np.int16))
    with pytest.raises(ValueError, match="shape"):
        F.kaldi_fbank(np.zeros((2, 2, 16000), dtype=np.float32))


def test_silence_hits_the_kaldi_floor():
    out = F.kaldi_fbank(np.zeros(16000, dtype=np.float32))
    assert torch.allclose(out, torch.full_like(out, float(np.log(KALDI_MEL_FLOOR))))


@CUDA
def test_fbank_on_cuda_matches_cpu(icbhi_cycles):
    cpu = F.kaldi_fbank(icbhi_cycles[:8])
    gpu = F.kaldi_fbank(torch.from_numpy(icbhi_cycles[:8]).cuda())
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - cpu).abs().max().item() < 1e-3


# --------------------------------------------------------------------------------------------------------
# Normalisations
# --------------------------------------------------------------------------------------------------------
def test_ast_normalize_uses_audioset_statistics():
    x = torch.tensor([-4.2677393, -4.2677393 + 2 * 4.5689974, 0.0])
    out = F.ast_normalize(x)
    assert torch.allclose(out, torch.tensor([0.0, 1.0, 4.2677393 / (2 * 4.5689974)]), atol=1e-6)


def test_per_sample_normalize_is_per_sample():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 50, 16, generator=gen) * torch.tensor([1.0, 3.0, 0.5, 10.0])[:, None, None]
    x = x + torch.tensor([0.0, -5.0, 7.0, 100.0])[:, None, None]
    out = F.per_sample_normalize(x)
    for i in range(4):
        assert abs(out[i].mean().item()) < 1e-5
        assert abs(out[i].std().item() - 0.5) < 1e-5
        assert torch.allclose(F.per_sample_normalize(x[i]), out[i], atol=1e-6)
    flat = torch.full((2, 10, 8), -15.9)  # a silent cycle: constant filterbank
    assert torch.equal(F.per_sample_normalize(flat), torch.zeros_like(flat))


# --------------------------------------------------------------------------------------------------------
# SpecAugment
# --------------------------------------------------------------------------------------------------------
def _spectrograms(batch=16, frames=300, bins=128, seed=0):
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.arange(batch, dtype=torch.float32)[:, None, None] * 3.0
    x = torch.randn(batch, frames, bins, generator=gen) + offsets
    # A cell that happens to equal its sample's mean in float32 would look unmasked; move such cells.
    while True:
        same = x == x.mean(dim=(1, 2), keepdim=True)
        if not same.any():
            return x
        x[same] += 0.5


def _masked_rows_and_cols(original, augmented):
    changed = augmented != original
    cols = changed.all(dim=0)  # frequency bins masked over every frame
    rows = changed.all(dim=1)  # frames masked over every bin
    return changed, rows, cols


def test_spec_augment_fills_full_rows_and_columns_with_each_samples_mean():
    x = _spectrograms()
    before = x.clone()
    out = F.spec_augment(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x, before), "spec_augment must not change its input"
    assert out.shape == x.shape and out.dtype == x.dtype
    masked_any = 0
    for i in range(len(x)):
        changed, rows, cols = _masked_rows_and_cols(x[i], out[i])
        # Every changed cell lies in a fully masked frame or a fully masked bin (no partial masks).
        assert torch.equal(changed, rows[:, None] | cols[None, :])
        assert int(cols.sum()) <= 2 * 48 and int(rows.sum()) <= 2 * 160
        if changed.any():
            masked_any += 1
            assert torch.allclose(out[i][changed], x[i].mean().expand(int(changed.sum())))
    assert masked_any >= len(x) - 1


def test_spec_augment_masks_each_sample_independently_and_deterministically():
    x = _spectrograms(batch=1).expand(32, -1, -1).contiguous()
    a = F.spec_augment(x, generator=torch.Generator().manual_seed(7))
    b = F.spec_augment(x, generator=torch.Generator().manual_seed(7))
    c = F.spec_augment(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    patterns = {tuple((a[i] != x[i]).flatten().nonzero().flatten()[:50].tolist()) for i in range(32)}
    assert len(patterns) > 16, "identical inputs got (mostly) the same masks: masks are not per sample"


def test_spec_augment_widths_are_uniform_from_zero_to_width():
    x = _spectrograms(batch=3000, frames=4, bins=128)
    out = F.spec_augment(x, freq_masks=1, freq_width=48, time_masks=0, generator=torch.Generator().manual_seed(3))
    widths = (out != x).all(dim=1).sum(dim=1).float()
    assert widths.min() == 0 and widths.max() == 48
    assert abs(widths.mean().item() - 24.0) < 1.0
    # Every width appears (uniform over 49 values, ~61 each).
    assert len(torch.unique(widths)) == 49


@CUDA
def test_spec_augment_on_cuda_matches_cpu_for_a_seed():
    x = _spectrograms(batch=8)
    cpu = F.spec_augment(x, generator=torch.Generator().manual_seed(5))
    gpu = F.spec_augment(x.cuda(), generator=torch.Generator().manual_seed(5))
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu)


# --------------------------------------------------------------------------------------------------------
# CLAP
# --------------------------------------------------------------------------------------------------------
def test_clap_torch_path_equals_the_extractor_on_real_recordings(icbhi_dir):
    waves = []
    for wav in sorted((icbhi_dir / "ICBHI_final_database").glob("*.wav"))[::3]:
        first = wav.with_suffix(".txt").read_text().split("\n")[0]
        samples, rate = read_audio(wav)
        span = tuple(map(float, first.split()[:2]))
        waves.append(prepare_recording_cycles(samples, rate, [span], PrepSettings(sample_rate=48000)))
    waves = np.concatenate(waves)
    ours = F.clap_features(waves)
    reference = F.clap_features(waves, method="extractor")
    assert ours.shape == reference.shape == (len(waves), 1001, 64)
    assert (ours - reference).abs().max().item() < 1e-3  # dB
    short = waves[0][: 3 * 48000]  # 3 s: repeated 3 times, then 1 s of zeros
    assert (F.clap_features(short) - F.clap_features(short, method="extractor")).abs().max().item() < 1e-3


def test_clap_features_of_an_eight_second_cycle():
    from transformers import ClapFeatureExtractor

    rng = np.random.default_rng(0)
    waves = (0.1 * rng.standard_normal((2, 8 * 48000))).astype(np.float32)
    out = F.clap_features(waves)
    assert out.shape == (2, 1001, 64) and out.dtype == torch.float32
    assert F.clap_features(waves[0]).shape == (1001, 64)
    direct = ClapFeatureExtractor(**CLAP_EXTRACTOR_ARGS)(waves[0], sampling_rate=48000, return_tensors="np")
    assert direct["input_features"].shape == (1, 1, 1001, 64)
    assert np.abs(out[0].numpy() - direct["input_features"][0, 0]).max() < 1e-4
    # 8 s of sound, then zeros to 10 s: frames wholly inside the padding sit at the -100 dB floor.
    assert torch.all(out[:, 805:] == -100.0)
    assert torch.all(out[:, :795] > -100.0)


# --------------------------------------------------------------------------------------------------------
# Feature sets and the cache, on a tiny project built here
# --------------------------------------------------------------------------------------------------------
def _tone_noise(rate: int, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def _add_recording(project: Project, path: Path, name: str, split: str = "train") -> int:
    info = audio_info(path)
    with project.transaction():
        return project.db["recordings"].insert(
            {
                "name": name,
                "split": split,
                "path": project.store_path(path),
                "sha256": file_sha256(path),
                "size_bytes": path.stat().st_size,
                "audio_status": "ok",
                "device": "Meditron",
                **info,
            }
        ).last_pk


@pytest.fixture
def tiny_project(tmp_path):
    project = Project.create(tmp_path / "tiny.rsc")
    audio = tmp_path / "audio"
    audio.mkdir()
    recordings = []
    for index, (rate, split) in enumerate([(4000, "train"), (44100, "test")]):
        path = audio / f"rec{index}.wav"
        sf.write(path, _tone_noise(rate, 12.0, index), rate, subtype="PCM_16")
        recordings.append(_add_recording(project, path, f"rec{index}", split))
    for rid in recordings:
        project.add_cycle(rid, 0.5, 3.0, crackle=1)
        project.add_cycle(rid, 3.0, 11.5)  # longer than 8 s: cut
        project.add_cycle(rid, 11.5, 11.9, wheeze=1)  # short: tiled
    yield project
    project.close()


def test_feature_sets_are_complete():
    from trainer.cli.features import SET_NAMES

    assert set(SET_NAMES) == set(F.FEATURE_SETS)
    assert F.FEATURE_SETS["cnn"].shape == (798, 128)
    assert F.FEATURE_SETS["ast"].shape == (798, 128)
    assert F.FEATURE_SETS["clap"].shape == (1001, 64)
    keys = {fs.key() for fs in F.FEATURE_SETS.values()}
    assert len(keys) == len(F.FEATURE_SETS)
    assert F.FEATURE_SETS["cnn"].settings()["version"] == F.FEATURE_VERSION
    assert F.FEATURE_SETS["cnn"].settings()["prep"]["sample_rate"] == 16000


def test_keys_of_existing_caches_stay_valid():
    # The keys the cnn and ast sets had before the feature package was split into rooms: a change
    # here makes every cache on disk miss, which only a FEATURE_VERSION bump should do. (The clap key
    # holds the transformers version, so it cannot be written down.)
    assert F.FEATURE_VERSION == 1
    assert F.FEATURE_SETS["cnn"].key() == "167344ea6d50cb42ba876700133d2cf19518b1658dae4611193262415316a51b"
    assert F.FEATURE_SETS["ast"].key() == "d69df58e53002fcf189d5dffa9a318d2ad6c877c5b02dda7fa38b39158fabc21"
    assert "family" not in F.FEATURE_SETS["ast"].settings()


def test_each_feature_set_names_the_model_family_that_reads_it():
    assert [F.family_of(name) for name in ("cnn", "ast", "clap", "stft", "mfcc")] == [
        "cnn", "transformer", "transformer", "cnn", "cnn"]
    assert F.family_of(F.FEATURE_SETS["ast"]) == "transformer"
    with pytest.raises(F.FeatureError, match="unknown feature set 'cqt'"):
        F.family_of("cqt")


def test_models_read_their_input_shapes_from_the_feature_set_table():
    from trainer.models import create_model, example_inputs

    x = example_inputs(create_model("cnn6-tiny"), batch=2)["x"]
    assert tuple(x.shape) == (2, *F.FEATURE_SETS["cnn"].shape)


def test_cache_miss_then_hit_memory_mapped(tiny_project):
    cycles = tiny_project.cycles()
    calls = []
    first = F.ensure_features(tiny_project, "cnn", cycles, progress=lambda d, t: calls.append((d, t)))
    assert not first.hit
    assert first.features.shape == (6, 798, 128)
    assert calls[0] == (0, 6) and calls[-1] == (6, 6)
    expected = F.FEATURE_SETS["cnn"].compute(prepare_cycles(tiny_project, cycles, PrepSettings()))
    assert torch.allclose(first.features, expected, atol=1e-5)

    second = F.ensure_features(tiny_project, "cnn", cycles)
    assert second.hit and second.path == first.path
    assert isinstance(second.array, np.memmap)
    assert second.features.data_ptr() == second.array.ctypes.data  # the tensor is the map, not a copy
    assert torch.equal(second.features, first.features)
    assert torch.equal(F.load_features(tiny_project, "cnn", [row["id"] for row in cycles]), first.features)
    meta = json.loads(second.path.with_suffix(".json").read_text())
    assert meta["cycle_ids"] == [row["id"] for row in cycles]
    assert meta["settings"]["normalization"] == "per_sample"
    assert second.path.parent == tiny_project.artifacts / "features"
    # Writing into a batch never reaches the file (copy-on-write map).
    second.features[0].zero_()
    assert not torch.equal(F.load_features(tiny_project, "cnn", cycles)[0], second.features[0])


def test_relabel_keeps_the_cache_but_boundaries_and_audio_do_not(tiny_project, tmp_path):
    cycles = tiny_project.cycles()
    first = F.ensure_features(tiny_project, "ast", cycles)
    tiny_project.update_cycle(cycles[0]["id"], label=3)
    relabelled = F.ensure_features(tiny_project, "ast", tiny_project.cycles())
    assert relabelled.hit and relabelled.path == first.path

    tiny_project.update_cycle(cycles[0]["id"], end=2.5)
    moved = F.ensure_features(tiny_project, "ast", tiny_project.cycles())
    assert not moved.hit and moved.path != first.path
    assert not torch.equal(moved.features[0], first.features[0])
    assert torch.equal(moved.features[1:], first.features[1:])
    assert not first.path.exists(), "a cache superseded for the same cycles is removed"

    # New audio content under the same recording (relocated to a new file with a new hash).
    rec = tiny_project.recording(cycles[0]["recording_id"])
    new_path = tmp_path / "audio" / "rec0-new.wav"
    sf.write(new_path, _tone_noise(4000, 12.0, 99), 4000, subtype="PCM_16")
    with tiny_project.transaction():
        tiny_project.db["recordings"].update(
            rec["id"],
            {"path": tiny_project.store_path(new_path), "sha256": file_sha256(new_path), "size_bytes": new_path.stat().st_size},
        )
    changed = F.ensure_features(tiny_project, "ast", tiny_project.cycles())
    assert not changed.hit and changed.path != moved.path
    assert not torch.equal(changed.features[:3], moved.features[:3])
    assert torch.equal(changed.features[3:], moved.features[3:])


def test_order_of_cycles_is_kept(tiny_project):
    cycles = tiny_project.cycles()
    forward = F.load_features(tiny_project, "cnn", cycles)
    backward = F.ensure_features(tiny_project, "cnn", list(reversed(cycles)))
    assert not backward.hit
    assert torch.equal(backward.features, forward.flip(0))
    # Both orders stay cached (different cycle lists); clearing the set removes both pairs of files.
    assert F.clear_cache(tiny_project, "cnn") == 4
    assert list(F.cache_dir(tiny_project).iterdir()) == []


def test_missing_or_changed_audio_is_named(tiny_project, tmp_path):
    cycles = tiny_project.cycles()
    rec = tiny_project.recording(cycles[0]["recording_id"])
    with tiny_project.transaction():
        tiny_project.db["recordings"].update(rec["id"], {"audio_status": "missing"})
    with pytest.raises(F.FeatureError, match="rec0 \\(missing\\).*with_audio=True"):
        F.load_features(tiny_project, "cnn", tiny_project.cycles())
    usable = tiny_project.cycles(with_audio=True)
    assert F.load_features(tiny_project, "cnn", usable).shape == (3, 798, 128)

    with tiny_project.transaction():
        tiny_project.db["recordings"].update(rec["id"], {"audio_status": "ok"})
    path = tiny_project.audio_path(rec)
    sf.write(path, _tone_noise(4000, 12.0, 123), 4000, subtype="PCM_16")  # content changed behind our back
    with pytest.raises(F.FeatureError, match="rec0.*sha256"):
        F.load_features(tiny_project, "cnn", tiny_project.cycles())


def test_unknown_cycle_ids_are_named(tiny_project):
    with pytest.raises(F.FeatureError, match="no cycles with id 999, 1000"):
        F.load_features(tiny_project, "cnn", [tiny_project.cycles()[0]["id"], 999, 1000])


def test_a_killed_write_leaves_no_cache(tiny_project, monkeypatch):
    cycles = tiny_project.cycles()
    real = F.FeatureSet.compute

    def dies(self, *args, **kwargs):
        raise KeyboardInterrupt  # what Ctrl-C (or a kill) in the middle of the computation looks like

    monkeypatch.setattr(F.FeatureSet, "compute", dies)
    with pytest.raises(KeyboardInterrupt):
        F.ensure_features(tiny_project, "cnn", cycles)
    folder = F.cache_dir(tiny_project)
    assert list(folder.iterdir()) == []

    # A writer killed with -9 leaves its temp file; the next writer removes it once its process is gone.
    orphan = folder / f".cnn-0.npy.tmp-{2**22 + 12345}-deadbeef"
    orphan.write_bytes(b"\x93NUMPY partial")
    monkeypatch.setattr(F.FeatureSet, "compute", real)
    result = F.ensure_features(tiny_project, "cnn", cycles)
    assert not result.hit and not orphan.exists()
    assert sorted(p.suffix for p in folder.iterdir()) == [".json", ".npy"]


def test_a_corrupt_cache_is_recomputed(tiny_project):
    cycles = tiny_project.cycles()
    first = F.ensure_features(tiny_project, "cnn", cycles)
    expected = first.features.clone()
    path = first.path
    del first
    path.write_bytes(path.read_bytes()[:1000])  # truncated by something outside our control
    again = F.ensure_features(tiny_project, "cnn", cycles)
    assert not again.hit and torch.equal(again.features, expected)


def test_clap_set_on_a_project(tiny_project):
    cycles = tiny_project.cycles()[:2]
    result = F.ensure_features(tiny_project, "clap", cycles)
    assert result.features.shape == (2, 1001, 64)
    prepared = prepare_cycles(tiny_project, cycles, PrepSettings(sample_rate=48000))
    assert torch.allclose(result.features, F.clap_features(prepared), atol=1e-5)
    assert F.ensure_features(tiny_project, "clap", cycles).hit


# --------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------
def _run_cli(argv):
    from trainer.cli import features as command

    parser = argparse.ArgumentParser(prog="rsc")
    command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_computes_then_hits_and_skips_missing_audio(tiny_project, capsys):
    path = str(tiny_project.path)
    assert _run_cli(["features", path, "--set", "cnn", "--split", "train", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "(3, 798, 128)" in out and "computed" in out and str(tiny_project.artifacts / "features") in out

    assert _run_cli(["features", path, "--set", "cnn", "--split", "train"]) == 0
    assert "cache hit" in capsys.readouterr().out

    rec = tiny_project.recording(tiny_project.cycles(split="test")[0]["recording_id"])
    with tiny_project.transaction():
        tiny_project.db["recordings"].update(rec["id"], {"audio_status": "missing"})
    assert _run_cli(["features", path, "--set", "ast", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "skipping 3 cycles of 1 recordings" in captured.err
    assert "(3, 798, 128)" in captured.out

    from trainer.cli import CommandError

    with pytest.raises(CommandError, match="no cycles with usable audio in the test split"):
        _run_cli(["features", path, "--set", "ast", "--split", "test", "--quiet"])


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["new-mtime", "mtime-kept"])
def test_an_in_place_edit_at_the_same_size_is_never_served_from_the_cache(tiny_project, capsys, keep_mtime):
    import os

    cycles = tiny_project.cycles()
    assert not F.ensure_features(tiny_project, "cnn", cycles).hit
    rec = tiny_project.recording(cycles[0]["recording_id"])
    path = tiny_project.audio_path(rec)
    before = path.stat()
    sf.write(path, _tone_noise(4000, 12.0, 123), 4000, subtype="PCM_16")  # rewritten in place, same size
    assert path.stat().st_size == before.st_size
    if keep_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(F.FeatureError, match="rec0 \\(changed: content differs from the import"):
        F.ensure_features(tiny_project, "cnn", cycles)
    changed = tiny_project.recording(rec["id"])
    assert changed["audio_status"] == "changed"
    assert changed["sample_hash"] and changed["mtime_ns"], "the first use stamped a recording made without a stamp"

    # The command line leaves it out by name and computes the others; it never reports a hit for it.
    assert _run_cli(["features", str(tiny_project.path), "--set", "cnn", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "skipping 3 cycles of 1 recordings whose audio is missing or changed: rec0 (changed)" in captured.err
    assert "(3, 798, 128)" in captured.out and "computed" in captured.out
