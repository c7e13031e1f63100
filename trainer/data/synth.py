"""Synthetic auscultation recordings in the ICBHI layout, with adventitious sounds exactly where labelled.

Each recording is band-limited breath noise shaped by an inspiration/expiration envelope per cycle,
with heart sounds as a label-independent distractor. A crackle cycle carries a few short explosive
transients (damped oscillations of a few milliseconds, mostly during inspiration); a wheeze cycle
carries a sustained tonal component between 100 and 1000 Hz with a harmonic, over a large part of the
cycle. Labels are written as ICBHI annotation files, with a patient-level train/test split,
demographics and diagnosis files, at the devices' sample rates and bit depths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ..vocab import CHEST_LOCATIONS, LABELS
from .icbhi import AUDIO_FOLDER, DEMOGRAPHICS_FILE, DIAGNOSIS_FILE, FOLDS_FILE, SPLIT_FILE

# (device, sample rate, subtype): the combinations met in the real database.
DEVICE_FORMATS = [
    ("AKGC417L", 44100, "PCM_24"),
    ("Meditron", 44100, "PCM_16"),
    ("Litt3200", 4000, "PCM_16"),
    ("LittC2SE", 44100, "PCM_24"),
    ("Meditron", 4000, "PCM_32"),
]
LOCATIONS = list(CHEST_LOCATIONS)
LABEL_PROBABILITIES = [0.4, 0.25, 0.2, 0.15]  # normal, crackle, wheeze, both
DIAGNOSES = ["Healthy", "COPD", "URTI", "Pneumonia", "Bronchiectasis"]
# A recording holds at least one cycle (up to 0.6 s of lead-in, at most 3.6 s of cycle, 0.1 s to spare)
# and stays a few hundred MB in memory while it is made.
MIN_DURATION, MAX_DURATION = 5.0, 600.0
MAX_RECORDINGS = 10_000


class SynthError(ValueError):
    """A synthetic dataset that cannot be written as asked; the message says why."""


def check_request(out: Path, recordings: int, duration: float, seed: int, force: bool) -> None:
    """SynthError unless the numbers make a dataset and ``out`` holds none that would be overwritten."""
    if not 2 <= recordings <= MAX_RECORDINGS:
        raise SynthError(f"--recordings {recordings}: need 2 to {MAX_RECORDINGS} (at least one per split)")
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise SynthError(f"--duration {duration:g}: need {MIN_DURATION:g} to {MAX_DURATION:g} seconds per recording")
    if seed < 0:
        raise SynthError(f"--seed {seed}: a seed is 0 or more")
    if out.exists() and not out.is_dir():
        raise SynthError(f"{out}: exists and is not a folder")
    if not force and ((out / SPLIT_FILE).exists() or any((out / AUDIO_FOLDER).glob("*.wav"))):
        raise SynthError(
            f"{out}: already holds a dataset (its split file or recordings); writing another there would mix the "
            "two or rewrite its split. Choose an empty folder, or give --force to replace it"
        )


def _remove_previous(out: Path) -> None:
    """Of a dataset replaced with force, the recordings its split file lists (the rest is overwritten)."""
    split = out / SPLIT_FILE
    if not split.is_file():
        return
    for line in split.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and "/" not in parts[0] and not parts[0].startswith("."):
            for suffix in (".wav", ".txt"):
                old = out / AUDIO_FOLDER / f"{parts[0]}{suffix}"
                if old.is_file():
                    old.unlink()


def _bandpass_noise(rng: np.random.Generator, n: int, sr: int, low: float, high: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    spectrum[(freqs < low) | (freqs > high)] = 0.0
    noise = np.fft.irfft(spectrum, n)
    return noise / (np.std(noise) + 1e-12)


def _breath_envelope(n: int) -> np.ndarray:
    """Inspiration (first 40 %, louder) then expiration."""
    t = np.linspace(0.0, 1.0, n, endpoint=False)
    inspiration = np.where(t < 0.4, np.sin(np.pi * t / 0.4), 0.0)
    expiration = np.where(t >= 0.4, 0.6 * np.sin(np.pi * (t - 0.4) / 0.6), 0.0)
    return inspiration + expiration


def _add_crackles(rng, signal, sr, start, end) -> None:
    length = end - start
    for _ in range(int(rng.integers(5, 12))):
        # Mostly inspiratory, as fine crackles are; some late ones too.
        where = rng.uniform(0.05, 0.45) if rng.random() < 0.75 else rng.uniform(0.45, 0.9)
        onset = start + int(where * length)
        freq = rng.uniform(250.0, min(1500.0, 0.4 * sr))
        dur = rng.uniform(0.004, 0.015)
        m = int(dur * sr)
        if m < 4 or onset + m >= end:
            continue
        t = np.arange(m) / sr
        burst = np.sin(2 * np.pi * freq * t) * np.exp(-t / (dur / 4.0))
        signal[onset : onset + m] += rng.uniform(0.8, 1.4) * rng.choice([-1.0, 1.0]) * burst


def _add_wheeze(rng, signal, sr, start, end) -> None:
    length = end - start
    span = rng.uniform(0.4, 0.8)
    first = start + int(rng.uniform(0.05, 0.95 - span) * length)
    m = int(span * length)
    t = np.arange(m) / sr
    f0 = rng.uniform(120.0, min(900.0, 0.2 * sr))
    glide = rng.uniform(-0.15, 0.15) * f0
    phase = 2 * np.pi * np.cumsum(f0 + glide * t / max(t[-1], 1e-9)) / sr
    tone = np.sin(phase) + 0.35 * np.sin(2 * phase)
    ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    signal[first : first + m] += rng.uniform(0.15, 0.3) * ramp * tone


def synthesize_recording(rng: np.random.Generator, sr: int, duration: float, labels: list[int]):
    """A recording and its cycle spans: returns (signal float32 in [-1, 1], [(start s, end s), ...])."""
    n = int(duration * sr)
    signal = np.zeros(n)
    breath = _bandpass_noise(rng, n, sr, 100.0, min(1000.0, 0.45 * sr))
    envelope = np.full(n, 0.05)
    spans = []
    t = rng.uniform(0.1, 0.6)
    for label in labels:
        length = rng.uniform(1.6, 3.6)
        if t + length > duration - 0.1:
            break
        a, b = int(t * sr), int((t + length) * sr)
        envelope[a:b] += _breath_envelope(b - a)
        if label in (1, 3):
            _add_crackles(rng, signal, sr, a, b)
        if label in (2, 3):
            _add_wheeze(rng, signal, sr, a, b)
        spans.append((round(t, 3), round(t + length, 3)))
        t += length + rng.uniform(0.0, 0.3)
    signal += 0.15 * envelope * breath
    beat = 1.0 / rng.uniform(1.0, 1.6)
    for onset in np.arange(rng.uniform(0, beat), duration - 0.1, beat):
        m = int(0.06 * sr)
        a = int(onset * sr)
        tt = np.arange(min(m, n - a)) / sr
        signal[a : a + len(tt)] += 0.2 * np.sin(2 * np.pi * 45 * tt) * np.exp(-tt / 0.02)
    signal += 0.003 * rng.standard_normal(n)
    peak = np.max(np.abs(signal))
    if peak > 0.95:
        signal *= 0.95 / peak
    return signal.astype(np.float32), spans


def write_synthetic_dataset(
    out_dir: str | Path, recordings: int = 40, seed: int = 0, duration: float = 20.0, progress=None,
    force: bool = False,
) -> Path:
    """Write an ICBHI-layout synthetic dataset to ``out_dir``; returns ``out_dir``.

    Patients have one to three recordings each; the split is by patient (about 60/40), so no patient
    is in both splits. The same seed always writes the same files. ``progress(done, total)`` is
    called after each recording. A folder that already holds a dataset is refused (SynthError)
    unless ``force``, which first removes the recordings its split file lists.
    """
    out = Path(out_dir)
    check_request(out, recordings, duration, seed, force)
    if force:
        _remove_previous(out)
    audio_dir = out / AUDIO_FOLDER
    audio_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    patients: list[tuple[str, int]] = []  # (patient id, number of recordings)
    remaining, pid = recordings, 301
    while remaining > 0:
        count = int(min(remaining, rng.integers(1, 4)))
        patients.append((str(pid), count))
        remaining -= count
        pid += 1
    order = rng.permutation(len(patients))
    n_test = max(1, int(round(0.4 * len(patients))))
    test_patients = {patients[i][0] for i in order[:n_test]}

    split_lines, demo_lines, diag_lines, fold_lines = [], [""], ["ID,CLASS"], []
    for index, (patient, count) in enumerate(patients):
        age = None if rng.random() < 0.05 else float(rng.choice([rng.uniform(1, 18), rng.uniform(19, 90)]))
        sex = str(rng.choice(["M", "F"]))
        adult = age is not None and age >= 19
        fmt = lambda v: "NA" if v is None else f"{v:.2f}"
        demo_lines.append(
            f"{patient} {fmt(age)} {sex} {fmt(rng.uniform(18, 35) if adult else None)} "
            f"{fmt(None if adult or age is None else rng.uniform(8, 60))} {fmt(None if adult or age is None else rng.uniform(70, 170))}"
        )
        diag_lines.append(f"{patient},{DIAGNOSES[index % len(DIAGNOSES)]}")
        fold_lines.append(f"{patient} {index % 5}")
        split = "test" if patient in test_patients else "train"
        mode = "mc" if count > 1 and rng.random() < 0.5 else "sc"
        locations = rng.permutation(LOCATIONS)[:count]
        for rec in range(count):
            device, sr, subtype = DEVICE_FORMATS[int(rng.integers(len(DEVICE_FORMATS)))]
            name = f"{patient}_{1 + rec // 3}b{1 + rec}_{locations[rec]}_{mode}_{device}"
            labels = list(rng.choice(4, size=12, p=LABEL_PROBABILITIES))
            signal, spans = synthesize_recording(rng, sr, duration, labels)
            sf.write(audio_dir / f"{name}.wav", signal, sr, subtype=subtype)
            with open(audio_dir / f"{name}.txt", "w") as handle:
                for (start, end), label in zip(spans, labels):
                    handle.write(f"{start:.3f}\t{end:.3f}\t{label & 1}\t{label >> 1}\n")
            split_lines.append(f"{name}\t{split}")
            if progress is not None:
                progress(len(split_lines), recordings)
    # The published split file has CRLF line endings; ours does too, so the importer meets the same bytes.
    (out / SPLIT_FILE).write_bytes(("\r\n".join(split_lines) + "\r\n").encode())
    (out / DEMOGRAPHICS_FILE).write_text("\n".join(demo_lines) + "\n")
    (out / DIAGNOSIS_FILE).write_text("\n".join(diag_lines) + "\n")
    (out / FOLDS_FILE).write_text("\n".join(fold_lines) + "\n")
    (out / "README.txt").write_text(
        f"Synthetic ICBHI-layout dataset written by RSC Studio (seed {seed}, {recordings} recordings).\n"
        f"Labels: {', '.join(LABELS)}. Crackles are short transients, wheezes sustained tones of 100-1000 Hz,\n"
        "present exactly in the cycles whose annotation line says so.\n"
    )
    return out
