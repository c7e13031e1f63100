"""CNN6 (PANNs): four 5x5 conv blocks, frequency mean, time max + mean, a 512-d embedding, a linear head.

Module names follow the PANNs release (``conv_block1.conv1``, ``conv_block1.bn1``, ...) so the AudioSet
checkpoint ``Cnn6_mAP=0.343.pth`` maps onto ours key for key. What PANNs has and we do not: ``bn0``
(a BatchNorm over its own 64 mel bins; our input has 128 bins and is normalised per sample), the
waveform front end (``spectrogram_extractor``, ``logmel_extractor``), ``fc1`` and the AudioSet head
``fc_audioset``; those are reported as skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import register_model
from .base import LoadReport, ModelError, RSCModel, load_state


class ConvBlock5x5(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        nn.init.xavier_uniform_(self.conv1.weight)  # the PANNs initialisation
        nn.init.ones_(self.bn1.weight)
        nn.init.zeros_(self.bn1.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.relu(self.bn1(self.conv1(x))), kernel_size=2)


class CNN6(RSCModel):
    def __init__(self, num_classes: int = 4, channels: Sequence[int] = (64, 128, 256, 512),
                 dropout: float = 0.0, feature_set: str = "cnn") -> None:
        channels = tuple(int(c) for c in channels)
        if len(channels) != 4:
            raise ModelError(f"cnn6 has four conv blocks; got channels={channels}")
        # The convolutions and the pooling take any (frames, bins) input, so the same network reads
        # another representation (stft, mfcc: multi-representation distillation) when asked to.
        super().__init__(num_classes, str(feature_set), embedding_dim=channels[-1])
        self.channels = channels
        widths = (1, *channels)
        for i in range(4):
            self.add_module(f"conv_block{i + 1}", ConvBlock5x5(widths[i], widths[i + 1]))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels[-1], num_classes)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def embed(self, x: torch.Tensor, text: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        self._check_input(x)
        x = x.unsqueeze(1)  # (B, 1, T, F)
        for block in (self.conv_block1, self.conv_block2, self.conv_block3, self.conv_block4):
            x = self.dropout(block(x))
        x = x.mean(dim=3)  # over frequency: (B, C, T)
        x = x.max(dim=2).values + x.mean(dim=2)  # over time
        return self.dropout(x)


def read_panns_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a PANNs checkpoint, read without unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such file (expected the PANNs checkpoint Cnn6_mAP=0.343.pth)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise ModelError(f"{path}: not a readable safetensors file ({exc})") from exc
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{path}: refused: it holds more than tensors, so reading it would run pickled code "
            f"(torch.load weights_only=True failed: {first}). If you trust the file, convert it once: "
            f"python -c \"import torch; from safetensors.torch import save_file; "
            f"save_file(torch.load('{path}', weights_only=False)['model'], 'cnn6_panns.safetensors')\" "
            "and pass cnn6_panns.safetensors"
        ) from exc
    if isinstance(data, Mapping) and isinstance(data.get("model"), Mapping):
        data = data["model"]
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ModelError(f"{path}: not a PANNs checkpoint (expected a dict with a 'model' state dict)")
    return dict(data)


def load_panns(model: CNN6, path: str | Path) -> LoadReport:
    state = read_panns_checkpoint(path)
    reasons = {
        "bn0.": "BatchNorm over PANNs' own 64 mel bins; our input has 128 bins, normalised per sample",
        "spectrogram_extractor.": "PANNs waveform front end; we take precomputed filterbanks",
        "logmel_extractor.": "PANNs waveform front end; we take precomputed filterbanks",
        "fc1.": "PANNs hidden layer after pooling; CNN6 here goes straight from the 512-d embedding to the head",
        "fc_audioset.": "AudioSet head (527 classes)",
    }

    def rename(key: str) -> str | None:
        return None if key.startswith(tuple(reasons)) else key

    report = load_state(model, state, source=str(path), rename=rename)
    for key in list(report.skipped):
        for prefix, why in reasons.items():
            if key.startswith(prefix):
                report.skipped[key] = why
    return report


def _build(num_classes: int, pretrained, default_channels, **overrides) -> CNN6:
    unknown = sorted(set(overrides) - {"channels", "dropout", "feature_set"})
    if unknown:
        raise ModelError(f"cnn6: unknown setting(s) {', '.join(unknown)} (known: channels, dropout, feature_set)")
    model = CNN6(num_classes=num_classes, channels=overrides.pop("channels", default_channels), **overrides)
    if pretrained is not None:
        if pretrained == "hub":
            raise ModelError("cnn6: its AudioSet weights are not on the transformers Hub; pass the path of "
                             "the PANNs file Cnn6_mAP=0.343.pth (zenodo.org/record/3987831)")
        model.pretrained_report = load_panns(model, pretrained)
    return model


@register_model("cnn6", feature_set="cnn", family="cnn6", pretrained="path to PANNs Cnn6_mAP=0.343.pth (or .safetensors)")
def cnn6(num_classes: int = 4, pretrained=None, **overrides) -> CNN6:
    return _build(num_classes, pretrained, (64, 128, 256, 512), **overrides)


@register_model("cnn6-tiny", feature_set="cnn", family="cnn6", pretrained="path to a .pth of the same shapes")
def cnn6_tiny(num_classes: int = 4, pretrained=None, **overrides) -> CNN6:
    return _build(num_classes, pretrained, (8, 16, 32, 64), **overrides)
