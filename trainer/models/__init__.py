"""Model registry: one name -> one small factory function, in the manner of timm's ``create_model``.

    model = create_model("cnn6", num_classes=4)                 # random initialisation
    model = create_model("ast", pretrained="hub")               # MIT/ast-finetuned-audioset-10-10-0.4593
    model = create_model("cnn6", pretrained="Cnn6_mAP=0.343.pth")
    logits = model(features)                                    # features (B, frames, bins)
    logits = bts(features, text=bts.tokenize([bts_prompt(rec, patient)]))

Every model follows the contract of :class:`trainer.models.base.RSCModel`. Pretrained weights are only
ever loaded when ``pretrained`` is given; nothing is downloaded otherwise. ``model.spec`` holds what
rebuilds the same architecture (and, for BTS, the same tokenizer) without loading weights again:
``create_model(**model.spec)`` followed by ``load_state_dict`` restores a trained checkpoint.
"""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..features.sets import FEATURE_SETS
from .base import LoadReport, ModelError, RSCModel
from .macs import MacCounter, count_macs, count_params
from .text import WordTokenizer, all_prompts, bts_prompt


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable[..., RSCModel]
    feature_set: str
    family: str
    pretrained: str  # what `pretrained=` accepts, in words, for `rsc models`
    hub_id: str | None = None  # the transformers Hub checkpoint that pretrained="hub" loads
    tiny: bool = False


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, feature_set: str, family: str = "", pretrained: str = "none",
                   hub_id: str | None = None) -> Callable:
    """Decorator: register ``factory(num_classes=4, pretrained=None, **overrides) -> RSCModel``."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"{name}: unknown feature set {feature_set!r}")

    def decorate(factory: Callable[..., RSCModel]) -> Callable[..., RSCModel]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, factory, feature_set, family or name.split("-")[0], pretrained,
                                     hub_id, tiny=name.endswith("-tiny"))
        return factory

    return decorate


def list_models(include_tiny: bool = True) -> list[str]:
    return [name for name, entry in _REGISTRY.items() if include_tiny or not entry.tiny]


def model_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ModelError(f"unknown model {name!r}{hint} (known: {', '.join(_REGISTRY)})") from None


def create_model(name: str, num_classes: int = 4, pretrained: Any = None, **overrides: Any) -> RSCModel:
    """Build a registered model.

    ``pretrained``: None (random initialisation), ``"hub"`` (or True) for the transformers Hub
    checkpoint of the family, or a local path (a checkpoint folder; for cnn6 the PANNs ``.pth`` file).
    ``overrides`` change the family's settings (e.g. ``dropout=0.2``; ``tokenizer="builtin"`` for BTS).
    """
    entry = model_entry(name)
    if pretrained is True:
        pretrained = "hub"
    if pretrained is False:
        pretrained = None
    model = entry.factory(num_classes=num_classes, pretrained=pretrained, **overrides)
    model.arch = name
    wanted = overrides.get("feature_set", entry.feature_set)  # a model that reads other features says so
    if model.feature_set != wanted:  # a factory bug, not a user error
        raise AssertionError(f"{name}: built a {model.feature_set!r} model, asked for {wanted!r}")
    rebuild = dict(overrides)
    if model.needs_text:
        rebuild["tokenizer"] = model.tokenizer_source
    model.spec = {"name": name, "num_classes": int(num_classes), **rebuild}
    return model


def example_inputs(model: RSCModel, batch: int = 1, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Keyword inputs for one forward pass on ``batch`` cycles: features of the right shape (+ text)."""
    frames, bins = FEATURE_SETS[model.feature_set].shape
    inputs: dict[str, Any] = {"x": torch.zeros(batch, frames, bins, device=device)}
    if model.needs_text:
        prompt = bts_prompt({"chest_location": "Al", "device": "AKGC417L"}, {"age": 8, "sex": "F"})
        inputs["text"] = {k: v.to(device) for k, v in model.tokenize([prompt] * batch).items()}
    return inputs


def model_info(name: str, num_classes: int = 4) -> dict[str, Any]:
    """params, MACs of one forward pass on one 8-s cycle, feature set and input shape.

    Computed on demand (once per process) by building the model on the ``meta`` device, which
    allocates no weights, so the full-size AST and BTS take well under a second each, not a minute;
    there is no table of figures to go stale.
    """
    return dict(_model_info(name, int(num_classes)))


@functools.lru_cache(maxsize=None)
def _model_info(name: str, num_classes: int) -> dict[str, Any]:
    entry = model_entry(name)
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes)
    inputs = example_inputs(model, device="meta")
    macs = count_macs(model, **inputs)
    return {
        "name": name,
        "params": count_params(model),
        "macs_per_cycle": macs,
        "feature_set": entry.feature_set,
        "input_shape": FEATURE_SETS[entry.feature_set].shape,
        "embedding_dim": model.embedding_dim,
        "needs_text": model.needs_text,
        "pretrained": entry.pretrained,
        "hub_id": entry.hub_id,
    }


def model_cost(name: str, model_args: dict | None = None, num_classes: int = 4) -> dict[str, int]:
    """Parameters and MACs per 8-s cycle of ``name`` built with ``model_args`` (a run's own settings)."""
    return dict(_model_cost(name, json.dumps(model_args or {}, sort_keys=True), int(num_classes)))


@functools.lru_cache(maxsize=256)
def _model_cost(name: str, args_json: str, num_classes: int) -> dict[str, int]:
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, **json.loads(args_json))
    return {"params": count_params(model), "macs_per_cycle": count_macs(model, **example_inputs(model, device="meta"))}


# Families register themselves on import; transformers is only imported when a model is built.
from . import cnn6, hf_vision, ast, clap, cpmobile  # noqa: E402,F401

__all__ = [
    "LoadReport", "MacCounter", "ModelEntry", "ModelError", "RSCModel", "WordTokenizer",
    "all_prompts", "bts_prompt", "count_macs", "count_params", "create_model", "example_inputs",
    "list_models", "model_cost", "model_entry", "model_info", "register_model",
]
