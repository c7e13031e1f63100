"""What every registered model shares: the trainer's contract and pretrained-loading helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..features.sets import FEATURE_SETS


class ModelError(ValueError):
    """A model cannot be built or its weights cannot be loaded; the message says why."""


class RSCModel(nn.Module):
    """Base of every registered model.

    The trainer relies on exactly this: ``feature_set``, ``arch``, ``num_classes``, ``needs_text``,
    ``embedding_dim``, ``forward(x, text=None) -> (B, num_classes)`` with ``x`` of shape (B, T, F),
    ``embed(x, text=None) -> (B, embedding_dim)`` and, for text models, ``tokenize(prompts)``.
    Subclasses implement ``embed`` and own a ``head`` module.
    """

    feature_set: str = ""
    needs_text: bool = False

    def __init__(self, num_classes: int, feature_set: str, embedding_dim: int, arch: str = "") -> None:
        super().__init__()
        if feature_set not in FEATURE_SETS:
            raise ModelError(f"unknown feature set {feature_set!r}; expected one of {sorted(FEATURE_SETS)}")
        if int(num_classes) < 1:
            raise ModelError(f"num_classes must be at least 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.feature_set = feature_set
        self.embedding_dim = int(embedding_dim)
        self.arch = arch
        # Filled by create_model: what rebuilds the same architecture (and tokenizer) without weights.
        self.spec: dict[str, Any] = {}
        # Filled when pretrained weights were loaded: which keys went where and which were skipped.
        self.pretrained_report: LoadReport | None = None

    def embed(self, x: torch.Tensor, text: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, text: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        return self.head(self.embed(x, text))

    def tokenize(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        raise TypeError(f"{self.arch or type(self).__name__} does not read text (needs_text is False)")

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 3:
            raise ValueError(
                f"{self.arch}: expected features of shape (batch, frames, bins), got {tuple(x.shape)}"
            )


@dataclass
class LoadReport:
    """Outcome of loading a checkpoint into a model."""

    source: str
    loaded: list[str] = field(default_factory=list)     # our keys that received checkpoint values
    adapted: dict[str, str] = field(default_factory=dict)  # our key -> how its value was transformed
    skipped: dict[str, str] = field(default_factory=dict)  # checkpoint key -> why it was not used
    missing: list[str] = field(default_factory=list)    # our keys left at their initial values
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.loaded)} tensors loaded from {self.source}"]
        if self.adapted:
            parts.append(f"{len(self.adapted)} adapted ({', '.join(sorted(self.adapted))})")
        if self.skipped:
            parts.append(f"{len(self.skipped)} checkpoint tensors skipped")
        if self.missing:
            parts.append(f"{len(self.missing)} left initialised ({', '.join(self.missing[:6])}"
                         + (", ..." if len(self.missing) > 6 else "") + ")")
        return "; ".join(parts)


def load_state(
    target: nn.Module,
    source_state: Mapping[str, torch.Tensor],
    *,
    source: str,
    rename: Callable[[str], str | None] = lambda key: key,
    adapt: Mapping[str, Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, str]]] | None = None,
    allowed_missing: tuple[str, ...] = ("head.",),
) -> LoadReport:
    """Copy the tensors of ``source_state`` that fit into ``target``.

    ``rename`` maps a checkpoint key to our key (None: not ours). ``adapt[our_key](value, our_tensor)``
    turns a checkpoint value of a different shape into ours and says how. Every tensor of ``target``
    outside ``allowed_missing`` prefixes must be filled, otherwise the checkpoint is the wrong
    architecture and loading stops with the list of what did not fit.
    """
    adapt = dict(adapt or {})
    ours = target.state_dict()
    report = LoadReport(source=source)
    new_state: dict[str, torch.Tensor] = {}
    for key, value in source_state.items():
        our_key = rename(key)
        if our_key is None:
            report.skipped[key] = "not part of this model"
            continue
        if our_key not in ours:
            report.skipped[key] = f"no tensor {our_key!r} in this model"
            continue
        want = ours[our_key]
        if tuple(value.shape) != tuple(want.shape):
            if our_key in adapt:
                value, how = adapt[our_key](value, want)
                report.adapted[our_key] = how
            else:
                report.skipped[key] = f"shape {tuple(value.shape)} does not fit {tuple(want.shape)}"
                continue
        new_state[our_key] = value.to(dtype=want.dtype)
    report.loaded = sorted(new_state)
    report.missing = sorted(k for k in ours if k not in new_state)
    unexplained = [k for k in report.missing if not k.startswith(allowed_missing)]
    if unexplained:
        shown = ", ".join(unexplained[:8]) + (", ..." if len(unexplained) > 8 else "")
        skipped = "; ".join(f"{k}: {why}" for k, why in list(report.skipped.items())[:4])
        raise ModelError(
            f"{source}: checkpoint does not fit {getattr(target, 'arch', '') or type(target).__name__}: "
            f"{len(unexplained)} tensors have no match ({shown})" + (f"; skipped e.g. {skipped}" if skipped else "")
        )
    target.load_state_dict(new_state, strict=False)
    return report


def sum_rgb_to_mono(value: torch.Tensor, want: torch.Tensor) -> tuple[torch.Tensor, str]:
    """First convolution of an RGB network adapted to one input channel.

    Summing over the colour channels keeps the response to a grey image (the same value in R, G and
    B) exactly what it was, which is how timm adapts ImageNet weights to one channel.
    """
    if value.dim() == 4 and want.dim() == 4 and want.shape[1] == 1 and value.shape[0] == want.shape[0] \
            and value.shape[2:] == want.shape[2:]:
        return value.sum(dim=1, keepdim=True), f"summed over {value.shape[1]} input channels"
    raise ModelError(f"cannot adapt a convolution of shape {tuple(value.shape)} to {tuple(want.shape)}")
