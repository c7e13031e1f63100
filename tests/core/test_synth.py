"""The synthetic dataset has crackles and wheezes exactly where its labels say, in the ICBHI layout."""

import hashlib

import numpy as np
import soundfile as sf

from trainer.audio import read_audio, resample
from trainer.data.synth import write_synthetic_dataset


def tonality(x, sr):
    """Median over frames of the strongest 100-1000 Hz bin against the band's median: high for a sustained tone."""
    x = resample(x, sr, 4000)
    frames = np.lib.stride_tricks.sliding_window_view(x, 256)[::128] * np.hanning(256)
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    f = np.fft.rfftfreq(256, 1 / 4000)
    band = spec[:, (f >= 100) & (f <= 1000)]
    return float(np.median(band.max(1) / (np.median(band, 1) + 1e-12)))


def impulsiveness(x, sr):
    """Kurtosis of the first difference: high when short explosive transients are present."""
    dx = np.diff(resample(x, sr, 4000))
    return float(np.mean(dx**4) / (np.mean(dx**2) ** 2 + 1e-20))


def auc(positive, negative):
    positive, negative = np.asarray(positive), np.asarray(negative)
    return float((positive[:, None] > negative[None, :]).mean())


def cycles_of(root):
    for txt in sorted((root / "ICBHI_final_database").glob("*.txt")):
        x, sr = read_audio(txt.with_suffix(".wav"))
        for line in txt.read_text().splitlines():
            start, end, crackle, wheeze = line.split()
            yield int(crackle), int(wheeze), x[int(float(start) * sr) : int(float(end) * sr)], sr


def test_adventitious_sounds_are_where_the_labels_say(synth_dir):
    rows = [(c, w, tonality(seg, sr), impulsiveness(seg, sr)) for c, w, seg, sr in cycles_of(synth_dir)]
    wheeze = [r[2] for r in rows if r[1]]
    no_wheeze = [r[2] for r in rows if not r[1]]
    crackle = [r[3] for r in rows if r[0]]
    no_crackle = [r[3] for r in rows if not r[0]]
    assert min(len(wheeze), len(no_wheeze), len(crackle), len(no_crackle)) >= 20
    assert auc(wheeze, no_wheeze) == 1.0  # every wheeze cycle is more tonal than every other cycle
    assert auc(crackle, no_crackle) > 0.95


def test_layout_formats_and_patient_level_split(synth_dir):
    audio = synth_dir / "ICBHI_final_database"
    wavs = sorted(audio.glob("*.wav"))
    assert len(wavs) == 24 and all(w.with_suffix(".txt").exists() for w in wavs)
    infos = [sf.info(str(w)) for w in wavs]
    assert {i.samplerate for i in infos} >= {4000, 44100}
    assert len({i.subtype for i in infos}) >= 2
    assert {w.stem.split("_")[-1] for w in wavs} >= {"AKGC417L", "Meditron"}
    split_bytes = (synth_dir / "ICBHI_challenge_train_test.txt").read_bytes()
    assert b"\r\n" in split_bytes  # as the published file
    splits = {}
    for line in split_bytes.decode().splitlines():
        name, split = line.split()
        splits.setdefault(name.split("_")[0], set()).add(split)
    assert all(len(s) == 1 for s in splits.values())
    assert {s for v in splits.values() for s in v} == {"train", "test"}
    assert (synth_dir / "demographic_info.txt").read_text().startswith("\n")


def test_same_seed_same_files(tmp_path):
    def digest(root):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}

    a = digest(write_synthetic_dataset(tmp_path / "a", recordings=4, seed=9, duration=6.0))
    b = digest(write_synthetic_dataset(tmp_path / "b", recordings=4, seed=9, duration=6.0))
    c = digest(write_synthetic_dataset(tmp_path / "c", recordings=4, seed=10, duration=6.0))
    assert a == b and a != c


def test_imports_cleanly(synth_project):
    stats = synth_project.stats()
    assert stats["recordings"]["with_audio"] == 24
    assert all(stats["cycles"][s]["total"] > 30 for s in ("train", "test"))
    assert all(stats["cycles"]["all"][label] > 10 for label in ("normal", "crackle", "wheeze", "both"))
    assert synth_project.query("SELECT count(*) AS n FROM import_messages WHERE level = 'error'")[0]["n"] == 0


def _rsc(*argv):
    from trainer.cli import main

    return main([str(a) for a in argv])


def test_impossible_requests_are_one_line_with_status_2(tmp_path, capsys):
    for args, words in [
        (("--recordings", "0"), "--recordings 0: need 2 to"),
        (("--recordings", "1"), "--recordings 1: need 2 to"),
        (("--duration", "0"), "--duration 0: need 5 to 600 seconds"),
        (("--duration", "nan"), "--duration nan: need 5 to 600 seconds"),
        (("--duration", "-4"), "--duration -4: need"),
        (("--seed", "-1"), "--seed -1: a seed is 0 or more"),
    ]:
        assert _rsc("synth", tmp_path / "out", *args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("rsc synth: ") and words in err[0], (args, err)
    assert not (tmp_path / "out").exists()
    (tmp_path / "file").write_text("x")
    assert _rsc("synth", tmp_path / "file", "--recordings", "2", "--duration", "5") == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_an_existing_dataset_is_not_rewritten_without_force(tmp_path, capsys):
    out = tmp_path / "data"
    assert _rsc("synth", out, "--recordings", "3", "--duration", "6", "--seed", "1") == 0
    split = out / "ICBHI_challenge_train_test.txt"
    first = split.read_bytes()
    old_names = {p.name for p in (out / "ICBHI_final_database").iterdir()}
    capsys.readouterr()
    assert _rsc("synth", out, "--recordings", "2", "--duration", "6", "--seed", "2") == 2
    err = capsys.readouterr().err
    assert "already holds a dataset" in err and "--force" in err
    assert split.read_bytes() == first
    assert _rsc("synth", out, "--recordings", "2", "--duration", "6", "--seed", "2", "--force") == 0
    names = {p.name for p in (out / "ICBHI_final_database").iterdir()}
    listed = {line.split()[0] for line in split.read_text().splitlines()}
    assert {n.rsplit(".", 1)[0] for n in names} == listed  # nothing of the old dataset left to mix in
    assert names != old_names
