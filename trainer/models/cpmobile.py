"""CP-Mobile: a receptive-field-regularised CNN of inverted residuals, the DCASE low-complexity student.

After CP-Mobile of the CP-JKU systems for DCASE Task 1 (Schmid et al.; the student of seed 004 and of
REFERENCE.md section 8): a stem of two strided 3x3 convolutions, stages of CPM blocks (1x1 expand, 3x3
depthwise, 1x1 project, each with batch norm, ReLU after the first two, a residual where the shape
stays), global average pooling and a 1x1 convolution head.

Receptive field regularisation: a CNN whose receptive field covers the whole spectrogram overfits the
recording conditions of small sets; CP-ResNet and CP-Mobile keep it small, mostly along frequency, by
using few 3x3 layers. Here the last blocks' depthwise kernels are 3x1 (time only), so the last stage
sees a band of the spectrum, not all of it; :func:`receptive_field` gives the figure per axis.

Sizes: ``cpmobile-s`` keeps the DCASE limits (at most 30 MMAC per second of audio and 128 K parameters;
an 8-s cycle of the ``cnn`` features is 798 x 128, so at most 240 MMAC per cycle), ``cpmobile-m`` is a
few hundred MMAC per second. CP-Mobile's head is a 1x1 convolution to the classes followed by pooling;
being linear, it commutes with average pooling, so ``head`` is that convolution applied to the pooled
vector (the same logits at 1/positions of the cost) and ``embed`` gives the pooled features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import register_model
from .base import LoadReport, ModelError, RSCModel, load_state


@dataclass(frozen=True)
class CPMobileConfig:
    """One size. ``stages``: per stage (channels, its blocks), a block being (time stride, frequency
    stride, depthwise kernel along frequency): a kernel of 1 there is CP-ResNet's way of growing the
    receptive field in time only."""

    stem: tuple[int, int]
    stages: tuple[tuple[int, tuple[tuple[int, int, int], ...]], ...]
    expansion: int = 3


# Time is cut harder than in the original: an 8-s cycle at a 10 ms hop has about three times the
# frames per second of the DCASE input it was sized for. The last blocks look along time only, which
# keeps the frequency receptive field at 71 (s) and 87 (m) of the 128 bins (measured in
# tests/core/test_low_complexity.py).
SIZES = {
    "s": CPMobileConfig(stem=(8, 24), stages=((24, ((1, 1, 3), (2, 2, 3))), (48, ((2, 2, 3), (1, 1, 1))),
                                             (72, ((2, 1, 3), (1, 1, 1))))),
    "m": CPMobileConfig(stem=(16, 96), stages=((96, ((1, 1, 3), (1, 2, 3), (1, 1, 3))),
                                              (160, ((2, 2, 3), (1, 1, 3), (1, 1, 1))),
                                              (256, ((2, 1, 1), (1, 1, 1), (1, 1, 1))))),
    "tiny": CPMobileConfig(stem=(8, 16), stages=((16, ((2, 2, 3),)), (32, ((2, 2, 1),))), expansion=2),
}


def conv_bn(cin: int, cout: int, kernel: tuple[int, int] | int, stride: tuple[int, int] | int = 1,
            groups: int = 1) -> nn.Sequential:
    kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=(kernel[0] // 2, kernel[1] // 2), groups=groups,
                  bias=False),
        nn.BatchNorm2d(cout),
    )


class CPMBlock(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 (or 3x1) depthwise carrying the stride, 1x1 project."""

    def __init__(self, cin: int, cout: int, stride: tuple[int, int], expansion: int, freq_kernel: int = 3) -> None:
        super().__init__()
        hidden = cin * expansion
        self.expand = conv_bn(cin, hidden, 1)
        self.depthwise = conv_bn(hidden, hidden, (3, freq_kernel), stride=stride, groups=hidden)
        self.project = conv_bn(hidden, cout, 1)
        self.residual = cin == cout and tuple(stride) == (1, 1)
        # The last batch norm of a residual branch starts at zero, so every block starts as the
        # identity and a deep stack trains from the first step (Goyal et al. 2017).
        if self.residual:
            nn.init.zeros_(self.project[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(F.relu(self.depthwise(F.relu(self.expand(x)))))
        return x + y if self.residual else F.relu(y)


class CPMobile(RSCModel):
    def __init__(self, num_classes: int = 4, config: CPMobileConfig = SIZES["s"], dropout: float = 0.0) -> None:
        last = config.stages[-1][0]
        super().__init__(num_classes, "cnn", embedding_dim=last)
        self.config = config
        s1, s2 = config.stem
        self.stem = nn.Sequential(conv_bn(1, s1, 3, stride=2), nn.ReLU(), conv_bn(s1, s2, 3, stride=2), nn.ReLU())
        blocks, width = [], s2
        for channels, stage in config.stages:
            for stride_t, stride_f, freq_kernel in stage:
                blocks.append(CPMBlock(width, channels, (stride_t, stride_f), config.expansion, freq_kernel))
                width = channels
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(last, num_classes)  # the 1x1 convolution head, after pooling (see the module doc)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def embed(self, x: torch.Tensor, text: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        self._check_input(x)
        x = self.blocks(self.stem(x.unsqueeze(1)))  # (B, C, T', F')
        return self.dropout(x.mean(dim=(2, 3)))


def receptive_field(config: CPMobileConfig) -> tuple[int, int]:
    """(frames, bins) one output position of the last stage sees: two stem convs, one depthwise per block."""
    layers = [((2, 2), (3, 3)), ((2, 2), (3, 3))]
    layers += [((st, sf), (3, kf)) for _, stage in config.stages for st, sf, kf in stage]
    field, jump = [1, 1], [1, 1]
    for stride, kernel in layers:
        for axis in (0, 1):
            field[axis] += (kernel[axis] - 1) * jump[axis]
            jump[axis] *= stride[axis]
    return field[0], field[1]


def _config(size: str, overrides: dict) -> CPMobileConfig:
    base = SIZES[size]
    stem = tuple(int(c) for c in overrides.pop("stem", base.stem))
    expansion = int(overrides.pop("expansion", base.expansion))
    channels: Sequence[int] = overrides.pop("channels", [c for c, _ in base.stages])
    if len(stem) != 2 or len(channels) != len(base.stages):
        raise ModelError(f"cpmobile-{size}: stem takes 2 widths and channels {len(base.stages)} "
                         f"(got {stem}, {channels})")
    stages = tuple((int(c), strides) for c, (_, strides) in zip(channels, base.stages))
    return CPMobileConfig(stem=stem, stages=stages, expansion=expansion)


def _build(size: str, num_classes: int, pretrained, **overrides) -> CPMobile:
    known = {"channels", "stem", "expansion", "dropout"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ModelError(f"cpmobile-{size}: unknown setting(s) {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(known))})")
    config = _config(size, overrides)
    model = CPMobile(num_classes=num_classes, config=config, dropout=float(overrides.pop("dropout", 0.0)))
    if pretrained is not None:
        if pretrained == "hub":
            raise ModelError(f"cpmobile-{size}: there are no published weights; pass a checkpoint of the same shapes")
        model.pretrained_report = _load(model, pretrained)
    return model


def _load(model: CPMobile, path) -> LoadReport:
    from pathlib import Path

    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        raise ModelError(f"{path}: expected a .safetensors file of the same shapes")
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise ModelError(f"{path}: not a readable safetensors file ({exc})") from exc
    return load_state(model, state, source=str(path))


@register_model("cpmobile-s", feature_set="cnn", family="cpmobile", pretrained=".safetensors of the same shapes")
def cpmobile_s(num_classes: int = 4, pretrained=None, **overrides) -> CPMobile:
    return _build("s", num_classes, pretrained, **overrides)


@register_model("cpmobile-m", feature_set="cnn", family="cpmobile", pretrained=".safetensors of the same shapes")
def cpmobile_m(num_classes: int = 4, pretrained=None, **overrides) -> CPMobile:
    return _build("m", num_classes, pretrained, **overrides)


@register_model("cpmobile-tiny", feature_set="cnn", family="cpmobile", pretrained=".safetensors of the same shapes")
def cpmobile_tiny(num_classes: int = 4, pretrained=None, **overrides) -> CPMobile:
    return _build("tiny", num_classes, pretrained, **overrides)
