"""A model exported to ONNX with the model card that says how to use it (``rsc export``).

The graph takes the features of prepared cycles and gives logits. The feature extraction stays
outside it (numpy in the classify-only edition, :func:`trainer.features.filterbank.kaldi_fbank_numpy`);
the feature set's normalisation is inside it, so the card's settings and the numpy filterbank are
all a user needs. BTS reads a prompt: its token ids and mask are two more inputs, and the card holds
the tokens of the prompt for unknown metadata (all a recording outside a project has).

The card (``<name>.card.json`` beside ``<name>.onnx``) holds the classes, the cycle preparation, the
feature settings, the normalisation, the graph's inputs, the sha256 of the ONNX file and, for a trained
run, its id, resolved training spec, final metrics, teachers and code version.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import warnings
from pathlib import Path

import torch

from .. import __version__
from ..features.normalise import AST_MEAN, AST_STD, ast_normalize, per_sample_normalize
from ..features.sets import FEATURE_SETS
from ..files import atomic_path, write_json_atomic
from ..models import bts_prompt, example_inputs
from ..project import Project, file_sha256, now
from ..runs import Run, get_run, list_runs
from ..vocab import LABELS
from .classify import CARD_FORMAT, CARD_VERSION, FEATURES_INPUT, MASK_INPUT, TOKENS_INPUT, card_path

OPSET = 18
OUTPUT = "logits"


class ExportError(ValueError):
    """A model or run that cannot be exported; the message says why."""


class _Graph(torch.nn.Module):
    """What the ONNX file computes: the feature set's normalisation, then the model."""

    def __init__(self, model: torch.nn.Module, normalization: str) -> None:
        super().__init__()
        self.model, self.normalization = model, normalization

    def forward(self, features, input_ids=None, attention_mask=None):
        if self.normalization == "ast":
            features = ast_normalize(features)
        elif self.normalization == "per_sample":
            features = per_sample_normalize(features)
        if input_ids is None:
            return self.model(features)
        return self.model(features, {"input_ids": input_ids, "attention_mask": attention_mask})


def _normalization(name: str) -> dict:
    if name == "ast":
        return {"kind": "ast", "mean": AST_MEAN, "std": AST_STD, "formula": "(x - mean) / (2 * std)", "in_graph": True}
    if name == "per_sample":
        return {"kind": "per_sample", "formula": "(x - mean) / (2 * std), mean and std (ddof 1) over each cycle's "
                "frames and bins; zeros where std < 1e-5", "in_graph": True}
    return {"kind": "none", "in_graph": True}


def export_model(model: torch.nn.Module, out: str | Path, run: dict | None = None, code_version: str | None = None) -> dict:
    """Write ``model`` (a registered RSCModel, trained or not) to ``out`` (.onnx) and its card; returns the card."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise ExportError(f"{out}: the exported model's name must end in .onnx")
    if not out.parent.is_dir():
        raise ExportError(f"{out.parent}: no such folder")
    fs = FEATURE_SETS[model.feature_set]
    model = model.eval().to("cpu")
    sample = example_inputs(model, batch=2)
    generator = torch.Generator().manual_seed(0)
    # Random values, not zeros: a silent example would trace per-sample normalisation on its constant branch only.
    args = [torch.randn(sample["x"].shape, generator=generator)]
    names = [FEATURES_INPUT]
    dynamic = {"features": {0: "batch"}}
    text = None
    if model.needs_text:
        prompt = bts_prompt(None, None)
        tokens = model.tokenize([prompt])
        text = {"prompt": prompt, TOKENS_INPUT: tokens["input_ids"][0].tolist(), MASK_INPUT: tokens["attention_mask"][0].tolist()}
        args += [sample["text"]["input_ids"], sample["text"]["attention_mask"]]
        names += [TOKENS_INPUT, MASK_INPUT]
        dynamic |= {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}}
    graph = _Graph(model, fs.normalization)
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(graph, tuple(args), input_names=names, output_names=[OUTPUT],
                                        dynamic_shapes=dynamic, opset_version=OPSET, dynamo=True, verbose=False)
        except Exception as exc:  # the exporter raises many kinds; say which model and why, in one line
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ExportError(f"{model.arch}: cannot be exported to ONNX ({type(exc).__name__}: {first})") from exc
        with atomic_path(out) as tmp:
            program.save(str(tmp))
    frames, bins = fs.shape
    inputs = [{"name": FEATURES_INPUT, "shape": ["batch", frames, bins], "dtype": "float32",
               "what": f"{fs.kind} features of prepared cycles, before normalisation"}]
    if text is not None:
        inputs += [{"name": n, "shape": ["batch", "tokens"], "dtype": "int64", "what": "tokens of the prompt"}
                   for n in (TOKENS_INPUT, MASK_INPUT)]
    card = {
        "format": CARD_FORMAT,
        "format_version": CARD_VERSION,
        "model": {"file": out.name, "sha256": file_sha256(out), "arch": model.arch, "model_spec": model.spec,
                  "opset": OPSET, "int8": False, "inputs": inputs,
                  "outputs": [{"name": OUTPUT, "shape": ["batch", model.num_classes], "dtype": "float32"}]},
        "classes": list(LABELS[: model.num_classes]),
        "prep": dataclasses.asdict(fs.prep) | {"target_samples": fs.prep.target_samples},
        "features": fs.settings(),
        "normalization": _normalization(fs.normalization),
        "text": text,
        "run": run,
        "exported": {"at": now(), "code_version": code_version or __version__, "torch": torch.__version__},
    }
    write_json_atomic(card_path(out), card)
    return card


def run_card(project: Project, run: Run) -> dict:
    """What the card says of a trained run: identity, resolved spec (the protocol), scores and teachers."""
    targets = run.spec.get("targets") or {}
    teachers = None
    if targets.get("kind") == "soft":
        ids = list(targets.get("teachers") or [])
        groups = sorted({other.group for other in list_runs(project) if other.id in ids})
        teachers = {"group": targets.get("teacher_group") or (groups[0] if len(groups) == 1 else groups),
                    "runs": ids, "mode": targets.get("mode"), "k": targets.get("k"),
                    "temperature": targets.get("temperature")}
    return {
        "id": run.id, "group": run.group, "kind": run.kind, "arch": run.arch, "seed": run.seed,
        "project": project.path.name, "spec": run.spec, "metrics": run.metrics, "epoch": run.epoch,
        "finished_at": run.finished_at, "code_version": run.code_version, "data_fingerprint": run.data_fingerprint,
        "teachers": teachers,
    }


def export_run(project: Project, run_id: str, model: torch.nn.Module, out: str | Path, code_version: str | None = None) -> dict:
    """Export the final model of a finished run (loaded by the caller) with its card."""
    run = get_run(project, run_id)
    if not run.finished:
        raise ExportError(f"run {run_id} is {run.status}: only a finished run has a final model to export")
    if getattr(model, "arch", run.arch) != run.arch:
        raise ExportError(f"run {run_id} trained {run.arch}, the model given is {model.arch}")
    return export_model(model, out, run=run_card(project, run), code_version=code_version)


def quantize_int8(onnx_path: str | Path, out: str | Path) -> dict:
    """Dynamic int8 quantisation of an exported model (weights int8, activations quantised per batch)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    onnx_path, out = Path(onnx_path), Path(out)
    card = json.loads(card_path(onnx_path).read_text())
    with atomic_path(out) as tmp, _quiet_exporter():
        quantize_dynamic(str(onnx_path), str(tmp), weight_type=QuantType.QInt8)
    card["model"] |= {"file": out.name, "sha256": file_sha256(out), "int8": True,
                      "quantized_from": {"file": onnx_path.name, "sha256": card["model"]["sha256"]}}
    write_json_atomic(card_path(out), card)
    return card


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter prints and logs every step (and that torchvision is missing); a command prints its own summary."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "root")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def compare_on_test(project: Project, onnx_paths, chunk: int = 256) -> list[dict]:
    """Score on the project's test split and model time per cycle of exported models (fp32 against int8).

    Features are computed once per chunk of cycles (the numpy filterbank) and shared, so the times are
    the models' alone.
    """
    import time

    from ..audio import prepare_cycles
    from ..evaluate import icbhi_score
    from .classify import OnnxModel

    models = [OnnxModel(path) for path in onnx_paths]
    cycles = project.cycles(split="test", with_audio=True)
    if not cycles:
        raise ExportError(f"{project.path.name}: no test cycles with audio to score the models on")
    seconds = [0.0] * len(models)
    predictions: list[list[int]] = [[] for _ in models]
    for first in range(0, len(cycles), chunk):
        features = models[0].features(prepare_cycles(project, cycles[first : first + chunk], models[0].prep))
        for i, model in enumerate(models):
            start = time.perf_counter()
            logits = model.logits(features)
            seconds[i] += time.perf_counter() - start
            predictions[i] += logits.argmax(axis=1).tolist()
    labels = [c["label"] for c in cycles]
    out = []
    for path, model, spent, predicted in zip(onnx_paths, models, seconds, predictions):
        score = icbhi_score(labels, predicted)
        out.append({"file": str(path), "int8": model.card["model"]["int8"], "ms_per_cycle": 1e3 * spent / len(cycles),
                    "sp": score["sp"], "se": score["se"], "score": score["score"], "n": score["n"]})
    return out
