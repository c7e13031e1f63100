"""Consistent ensemble distillation (seed paper 003): augmented views named by seeds, and their stored teacher logits.

A *view* of a training cycle is its cached features changed by a SpecAugment draw, a time shift and a
gain, all drawn from one integer seed, so the view can be made again exactly: the teachers see it once
(``rsc logits``), the student sees the very same input when it replays the seed. For each view the
ensemble's mean logits are kept as their top k (class indices and fp16 values) with the seed and a digest
of the view's bytes, so a replay that would not be bit-identical (other features, other code) is refused
instead of training on targets of another input.

The passes live in one file per teacher group and pass count, ``<project>.rsc.d/logit-passes/<name>.npz``
with a JSON sidecar (format :data:`FORMAT`); this module is their one owner.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..features.augment import spec_augment
from ..files import write_atomic, write_json_atomic
from .modes import DistillError

FORMAT = "rsc-logit-passes"
FORMAT_VERSION = 1
FOLDER = "logit-passes"
SEED_BITS = 62  # seeds stay positive in int64 and in torch.Generator.manual_seed


@dataclass(frozen=True)
class ViewRecipe:
    """What one view changes. Widths are in frames (time, 10 ms) and bins (frequency), as in SpecAugment."""

    # Mild by default: on the synthetic set a label-free cnn6-tiny student of two cnn6-tiny teachers (10
    # epochs) reached Score 95.2 with these views and 57.3 with 24-bin and 80-frame masks and 50-frame shifts
    # (benchmarks/bench_ced.py); larger masks suit longer training than a CPU run gives.
    freq_masks: int = 2
    freq_width: int = 8
    time_masks: int = 2
    time_width: int = 20
    max_shift: int = 20  # frames a view is rolled by at most, either way
    # Gain changes the level before normalisation. Per-sample normalised features (cnn) are blind to it,
    # so it is applied only to features with fixed statistics (ast), where it is a shift of the input.
    gain_db: float = 6.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ViewRecipe":
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise DistillError(f"unknown view settings: {', '.join(sorted(unknown))}")
        return cls(**data)


def view_seed(base_seed: int, cycle_id: int, view: int) -> int:
    """The seed of view ``view`` of cycle ``cycle_id``: a hash, so no two cycles or views share a draw."""
    digest = hashlib.blake2b(f"ced:{int(base_seed)}:{int(cycle_id)}:{int(view)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> (64 - SEED_BITS)


def _gain_shift(gain_db: float, normalization: str) -> float:
    """The change of the model's input for a gain of ``gain_db`` under the feature set's normalisation."""
    if normalization == "ast":
        from ..features.normalise import AST_STD

        # A Kaldi filterbank is the natural log of power: g dB adds g * ln(10) / 10 before (x - m) / (2 s).
        return gain_db * math.log(10.0) / 10.0 / (2.0 * AST_STD)
    return 0.0


def make_views(x: torch.Tensor, seeds: Sequence[int], recipe: ViewRecipe, normalization: str = "per_sample") -> torch.Tensor:
    """The views of ``x`` (B, T, F) float32, one per seed; the same seeds always give the same bytes.

    Each sample draws from its own CPU generator, so a view depends on its seed only, never on which other
    cycles share its batch or on the device.
    """
    if x.ndim != 3 or x.shape[0] != len(seeds):
        raise DistillError(f"make_views: {len(seeds)} seed(s) for features of shape {tuple(x.shape)}")
    out = torch.empty_like(x, dtype=torch.float32)
    for i, seed in enumerate(seeds):
        gen = torch.Generator().manual_seed(int(seed))
        row = x[i : i + 1].float().cpu()
        row = spec_augment(row, recipe.freq_masks, recipe.freq_width, recipe.time_masks, recipe.time_width, generator=gen)
        shift = int(torch.randint(-recipe.max_shift, recipe.max_shift + 1, (1,), generator=gen)) if recipe.max_shift else 0
        gain = (float(torch.rand((1,), generator=gen)) * 2.0 - 1.0) * recipe.gain_db
        row = torch.roll(row, shifts=shift, dims=1)
        offset = _gain_shift(gain, normalization)
        if offset:
            row = row + offset
        out[i] = row[0].to(out.device)
    return out


def view_digest(view: torch.Tensor) -> int:
    """64 bits of blake2b over a view's float32 bytes: what the teachers saw, to check a replay against."""
    data = np.ascontiguousarray(view.detach().cpu().numpy(), dtype=np.float32).tobytes()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1


def passes_path(artifacts: Path, name: str) -> Path:
    return Path(artifacts) / FOLDER / f"{name}.npz"


@dataclass
class LogitPasses:
    """Stored teacher logits of N views of each training cycle (top k per view)."""

    meta: dict  # format, teachers, group, passes, k, recipe, feature_set, normalization, base_seed, num_classes
    cycle_ids: np.ndarray  # (C,) int64
    seeds: np.ndarray  # (C, V) int64
    digests: np.ndarray  # (C, V) int64
    top_index: np.ndarray  # (C, V, K) uint8
    top_value: np.ndarray  # (C, V, K) float16

    @property
    def passes(self) -> int:
        return int(self.seeds.shape[1])

    @property
    def recipe(self) -> ViewRecipe:
        return ViewRecipe.from_dict(self.meta["recipe"])

    def bytes_per_view(self) -> int:
        """What one cycle's view costs on disk before compression: seed, digest, top-k indices and values."""
        k = self.top_index.shape[2]
        return 8 + 8 + k * (1 + 2)

    def row_of(self) -> dict[int, int]:
        return {int(c): i for i, c in enumerate(self.cycle_ids)}

    def soft_targets(self, rows: np.ndarray, views: np.ndarray, temperature: float = 1.0) -> torch.Tensor:
        """Softmax over the stored top-k logits / T of the given (row, view) pairs; classes outside the top k get 0."""
        num_classes = int(self.meta["num_classes"])
        index = torch.from_numpy(self.top_index[rows, views].astype(np.int64))
        value = torch.from_numpy(self.top_value[rows, views].astype(np.float32)) / float(temperature)
        logits = torch.full((len(rows), num_classes), -math.inf).scatter_(1, index, value)
        return torch.softmax(logits, dim=1)


def topk_of(logits: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    values, index = torch.topk(logits.float(), k=k, dim=1)
    return index.numpy().astype(np.uint8), values.numpy().astype(np.float16)


def save_passes(path: Path, passes: LogitPasses) -> Path:
    """Write the arrays and their sidecar atomically; the sidecar holds the arrays' sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, cycle_ids=passes.cycle_ids, seeds=passes.seeds, digests=passes.digests,
                     top_index=passes.top_index, top_value=passes.top_value)

    write_atomic(path, write)
    meta = dict(passes.meta, format=FORMAT, format_version=FORMAT_VERSION, sha256=_sha256(path))
    write_json_atomic(path.with_suffix(".json"), meta)
    passes.meta = meta
    return path


def load_passes(path: Path) -> LogitPasses:
    """The passes in ``path``, checked against their sidecar; DistillError naming the file otherwise."""
    path = Path(path)
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        raise DistillError(f"{path}: no stored teacher passes (run `rsc logits` first)")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DistillError(f"{sidecar}: not a passes sidecar ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DistillError(f"{sidecar}: not a passes sidecar (no format {FORMAT!r})")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise DistillError(f"{sidecar}: version {meta['format_version']} is newer than this program reads")
    if _sha256(path) != meta.get("sha256"):
        raise DistillError(f"{path}: does not match its sidecar (sha256 differs: changed or damaged); run `rsc logits` again")
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in ("cycle_ids", "seeds", "digests", "top_index", "top_value")}
    return LogitPasses(meta=meta, **arrays)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
