"""Classification of recordings cycle by cycle (``rsc classify``): an exported model on onnxruntime, or torch runs.

The ONNX path (:class:`OnnxModel`) imports numpy, soundfile and soxr (through :mod:`trainer.audio`),
onnxruntime and the numpy filterbank, never torch: it is what the classify-only edition runs, and a
test runs it with torch blocked. :class:`TorchModels` (one run, or an ensemble's runs: the mean of
their logits) imports torch when it computes.

A recording's cycles come from a label file beside it (``name.txt`` for ``name.wav``, as ICBHI ships
them) or one given; without one, from :func:`segment_wave`. Each cycle gets the softmax of the logits;
when the top probability is below the threshold its label is ``uncertain``.

The model card (``<name>.card.json`` beside ``<name>.onnx``, written by :mod:`.export`) is read here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..audio import PrepSettings, audio_info, prepare_recording_cycles, read_audio
from ..features.filterbank import kaldi_fbank_numpy
from ..labelfiles import LabelError, read_labels
from ..project import file_sha256
from .segment import SegmentSettings, segment_wave

CARD_FORMAT = "rsc-model-card"
CARD_VERSION = 1
FEATURES_INPUT, TOKENS_INPUT, MASK_INPUT = "features", "input_ids", "attention_mask"
UNCERTAIN = "uncertain"
DEFAULT_THRESHOLD = 0.6
# Shorter than the shortest cycle the segmentation allows, a recording holds no whole breath.
MIN_RECORDING = SegmentSettings().min_cycle
BATCH = 16
SQLITE_MAGIC = b"SQLite format 3\x00"


class ClassifyError(ValueError):
    """A model or recording that cannot be classified; one line that names the file and says why."""


def card_path(onnx_path: str | Path) -> Path:
    """Where the card of an ONNX file lives: ``model.onnx`` -> ``model.card.json``."""
    return Path(onnx_path).with_suffix(".card.json")


def read_card(onnx_path: str | Path) -> dict:
    """The card beside an exported model, checked against the file (sha256); ClassifyError otherwise."""
    path = Path(onnx_path)
    if not path.is_file():
        raise ClassifyError(f"{path}: no such model file")
    with open(path, "rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC:
            raise ClassifyError(f"{path} is a project: name a run as {path}:RUN or a group as {path}:group:NAME")
    card_file = card_path(path)
    if not card_file.is_file():
        raise ClassifyError(f"{path}: no model card beside it ({card_file.name}); export models with `rsc export`")
    try:
        card = json.loads(card_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClassifyError(f"{card_file}: not a model card ({exc})") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ClassifyError(f"{card_file}: not a model card (no format {CARD_FORMAT!r})")
    missing = [key for key in ("model", "classes", "prep", "features") if key not in card]
    if missing or "sha256" not in card["model"]:
        raise ClassifyError(f"{card_file}: a model card without {', '.join(missing) or 'model.sha256'}")
    if int(card.get("format_version", 0)) > CARD_VERSION:
        raise ClassifyError(f"{card_file}: card version {card['format_version']} is newer than this program reads ({CARD_VERSION})")
    if file_sha256(path) != card["model"]["sha256"]:
        raise ClassifyError(f"{path}: does not match its card {card_file.name} (sha256 differs: a different or changed file)")
    return card


def prep_of(card: dict) -> PrepSettings:
    return PrepSettings(**{k: v for k, v in card["prep"].items() if k != "target_samples"})


class OnnxModel:
    """An exported model and its card, on onnxruntime."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
        self.card = read_card(self.path)
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        # Spinning threads wait for work by burning CPU; beside a GUI or other jobs that costs more than it
        # saves (EfficientNet-B0 on a busy 2-core machine: 74 against 96 ms per cycle).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ClassifyError(f"{self.path}: onnxruntime cannot load it ({str(exc).splitlines()[0][:200]})") from None
        names = [i.name for i in self.session.get_inputs()]
        if names != [i["name"] for i in self.card["model"]["inputs"]]:
            raise ClassifyError(f"{self.path}: its inputs {names} are not the ones its card lists")
        self.classes = tuple(self.card["classes"])
        self.prep = prep_of(self.card)
        run = self.card.get("run") or {}
        self.identity = f"onnx:{run.get('id') or self.card['model']['arch']}@{self.card['model']['sha256'][:12]}"
        # The file's whole sha256 (read_card checked it): what says which weights gave a result.
        self.version = self.card["model"]["sha256"]

    def features(self, waves: np.ndarray) -> np.ndarray:
        settings = self.card["features"]
        if settings["kind"] in ("stft", "mfcc"):
            from ..features.spectra import spectra_numpy

            return spectra_numpy(waves, settings, self.prep.sample_rate)
        if settings["kind"] == "clap":
            try:
                from ..features.clap import clap_features
            except ImportError:
                raise ClassifyError(f"{self.path}: CLAP features have no numpy path yet; this model needs torch installed") from None
            return clap_features(waves).numpy()
        keys = ("num_mel_bins", "frame_length_ms", "frame_shift_ms", "preemphasis", "low_freq", "high_freq")
        return kaldi_fbank_numpy(waves, sample_rate=self.prep.sample_rate, **{k: settings[k] for k in keys})

    def logits(self, features: np.ndarray) -> np.ndarray:
        feeds = {FEATURES_INPUT: np.ascontiguousarray(features, dtype=np.float32)}
        text = self.card.get("text")
        if text:
            n = features.shape[0]
            feeds[TOKENS_INPUT] = np.tile(np.asarray(text[TOKENS_INPUT], dtype=np.int64), (n, 1))
            feeds[MASK_INPUT] = np.tile(np.asarray(text[MASK_INPUT], dtype=np.int64), (n, 1))
        return self.session.run(None, feeds)[0]


class TorchModels:
    """Trained torch models of one feature set: one run, or an ensemble whose logits are averaged."""

    def __init__(self, models: Sequence, identity: str, classes: Sequence[str], version: str | None = None) -> None:
        if not models:
            raise ClassifyError(f"{identity}: no model to classify with")
        sets = {m.feature_set for m in models}
        if len(sets) > 1:
            raise ClassifyError(f"{identity}: the models read different features ({', '.join(sorted(sets))}); "
                                "an ensemble needs one feature set")
        from ..features.sets import FEATURE_SETS

        self.models = [m.eval() for m in models]
        self.feature_set = FEATURE_SETS[sets.pop()]
        self.identity, self.classes, self.prep, self.card = identity, tuple(classes), self.feature_set.prep, None
        self.version = version  # the weights' identity (trainer.train.classifier: the model files' sha256)

    def features(self, waves: np.ndarray):
        return self.feature_set.compute(waves)

    def logits(self, features) -> np.ndarray:
        import torch

        from ..models import bts_prompt

        total = None
        with torch.inference_mode():
            for model in self.models:
                text = model.tokenize([bts_prompt(None, None)] * features.shape[0]) if model.needs_text else None
                out = model(features, text) if text is not None else model(features)
                total = out if total is None else total + out
        return (total / len(self.models)).float().numpy()


@dataclass
class CycleResult:
    start: float
    end: float
    source: str  # annotation, envelope or fixed
    probabilities: dict
    predicted: str
    confidence: float
    label: str  # predicted, or "uncertain" below the threshold
    annotated: str | None = None
    segment_confidence: float | None = None

    @property
    def disagrees(self) -> bool:
        """A confident prediction that differs from the cycle's annotated label."""
        return self.annotated is not None and self.label != UNCERTAIN and self.predicted != self.annotated


@dataclass
class RecordingResult:
    path: str
    model: str
    threshold: float
    duration: float
    cycles_from: str  # the label file, or "segmentation (auto)"
    cycles: list[CycleResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    version: str | None = None  # the model's weights (see OnnxModel.version, TorchModels.version)

    def to_dict(self) -> dict:
        data = asdict(self)
        for row, cycle in zip(data["cycles"], self.cycles):
            row["disagrees"] = cycle.disagrees
        return data


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def sidecar_labels(audio: Path) -> Path | None:
    """The label file beside a recording (``name.txt``, ``name.TextGrid``, ``name.csv``), if there is one."""
    for suffix in (".txt", ".TextGrid", ".csv"):
        candidate = audio.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def classify_file(model, path: str | Path, threshold: float = DEFAULT_THRESHOLD, method: str = "auto",
                  labels: str | Path | None = "beside") -> RecordingResult:
    """Classify every cycle of one audio file; ``labels``: a label file, "beside" (a sidecar if any) or None."""
    path = Path(path)
    if not 0.0 <= threshold <= 1.0:
        raise ClassifyError(f"threshold {threshold:g} is not a probability (0-1)")
    wave, rate, notes = _read(path, model.prep.sample_rate)
    duration = wave.size / float(rate)
    label_file = sidecar_labels(path) if labels == "beside" else (Path(labels) if labels else None)
    if label_file is not None:
        spans, annotated = _annotated_spans(label_file, duration)
        sources, confidences, cycles_from = ["annotation"] * len(spans), [None] * len(spans), str(label_file)
    else:
        segments = segment_wave(wave, rate, method)
        spans, annotated = [(s.start, s.end) for s in segments], [None] * len(segments)
        sources, confidences, cycles_from = [s.method for s in segments], [s.confidence for s in segments], f"segmentation ({method})"
    probabilities = classify_spans(model, wave, rate, spans)
    result = RecordingResult(str(path), model.identity, threshold, round(duration, 3), cycles_from, notes=notes,
                             version=getattr(model, "version", None))
    for (start, end), p, source, conf, known in zip(spans, probabilities, sources, confidences, annotated):
        top = int(np.argmax(p))
        predicted = model.classes[top]
        result.cycles.append(CycleResult(
            float(start), float(end), source, {c: round(float(v), 6) for c, v in zip(model.classes, p)},
            predicted, round(float(p[top]), 6), predicted if p[top] >= threshold else UNCERTAIN, known, conf,
        ))
    return result


def classify_spans(model, wave: np.ndarray, rate: int, spans: Sequence[tuple[float, float]]) -> np.ndarray:
    """Class probabilities (cycles, classes) of spans of one waveform, prepared as the model was trained."""
    out = np.empty((len(spans), len(model.classes)))
    for start in range(0, len(spans), BATCH):
        waves = prepare_recording_cycles(wave, rate, spans[start : start + BATCH], model.prep)
        out[start : start + len(waves)] = softmax(model.logits(model.features(waves)))
    return out


def _read(path: Path, sample_rate: int) -> tuple[np.ndarray, int, list[str]]:
    info = audio_info(path)  # AudioError names a missing, empty or unreadable file
    if not info.get("frames"):
        raise ClassifyError(f"{path}: no audio samples")
    if info["duration"] < MIN_RECORDING:
        raise ClassifyError(f"{path}: {info['duration']:.3f} s of audio is too short to hold a breathing cycle "
                            f"(at least {MIN_RECORDING:g} s)")
    wave, rate = read_audio(path)
    # Downsampling is routine (most stethoscopes record at 44.1 kHz); these two change what the model hears.
    changes = [f"mixed {info['channels']} channels down to mono"] if info["channels"] > 1 else []
    if rate < sample_rate:
        changes.append(f"upsampled from {rate} to {sample_rate} Hz (nothing above {rate // 2} Hz)")
    return wave, rate, [f"{path}: {' and '.join(changes)}"] if changes else []


def _annotated_spans(label_file: Path, duration: float) -> tuple[list[tuple[float, float]], list[str]]:
    try:
        _, intervals = read_labels(label_file)
    except (LabelError, OSError, UnicodeDecodeError) as exc:
        raise ClassifyError(f"{label_file}: {exc}") from None
    kept = [i for i in intervals if i.end > i.start and i.start < duration]
    if not kept:
        raise ClassifyError(f"{label_file}: no cycle inside the recording's {duration:.3f} s")
    return [(i.start, min(i.end, duration)) for i in kept], [i.label_name for i in kept]


CSV_COLUMNS = ("file", "cycle", "start", "end", "source", "label", "predicted", "confidence")


def result_rows(result: RecordingResult) -> list[dict]:
    """One flat row per cycle (for CSV): the columns above, then p_<class>, annotated and disagrees."""
    rows = []
    for index, c in enumerate(result.cycles, 1):
        row = dict(zip(CSV_COLUMNS, (result.path, index, c.start, c.end, c.source, c.label, c.predicted, c.confidence)))
        row |= {f"p_{name}": value for name, value in c.probabilities.items()}
        rows.append(row | {"annotated": c.annotated or "", "disagrees": int(c.disagrees)})
    return rows
