"""AST: transformers ASTModel on 798 frames x 128 mel, with the head LayerNorm + Linear(768, classes).

The AudioSet checkpoint was trained on 1024 frames, a 12 x 101 grid of patch positions; ours is
12 x 79. ``pos_embed`` says how its position embeddings reach our grid (the two leading tokens, CLS
and distillation, are kept as they are):

- ``crop`` (the default; the published AST code, src/models/ast_models.py): an axis with fewer
  patches than the checkpoint keeps its centre positions (time columns 11..89 of 101 for 8 s), an
  axis with more is resampled bilinearly (corners not aligned), as that code does.
- ``resample``: both axes resampled bilinearly with corners aligned, so the first and last patch
  keep their embeddings and the ones between are interpolated. Every run made before ``pos_embed``
  existed used this; a stored run whose model settings lack the key means it
  (:func:`stored_run_model_args`), a new run records its choice (:func:`new_run_model_args`).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from . import register_model
from .base import ModelError, RSCModel, load_state
from .hf_loading import config_differences, load_hf_model, make_config

AST_HUB_ID = "MIT/ast-finetuned-audioset-10-10-0.4593"
AST_FULL = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                patch_size=16, frequency_stride=10, time_stride=10, max_length=798, num_mel_bins=128,
                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, layer_norm_eps=1e-12, qkv_bias=True)
AST_TINY = dict(AST_FULL, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
POS_EMBED_MODES = ("crop", "resample")
# A new run records the default; a run stored without the key was made when resampling was all there was.
NEW_RUN_ARGS = {"pos_embed": "crop"}
STORED_RUN_ARGS = {"pos_embed": "resample"}


def patch_grid(config: Any) -> tuple[int, int]:
    """(frequency, time) number of patch positions of an AST config."""
    f = (config.num_mel_bins - config.patch_size) // config.frequency_stride + 1
    t = (config.max_length - config.patch_size) // config.time_stride + 1
    return f, t


def _grid_of(pos: torch.Tensor, grid: tuple[int, int], leading_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The leading tokens and the (1, D, F, T) patch grid of (1, leading + F*T, D) position embeddings."""
    f0, t0 = grid
    if pos.shape[1] != leading_tokens + f0 * t0:
        raise ModelError(f"position embeddings of length {pos.shape[1]} do not match a {f0}x{t0} grid")
    # Patches are flattened frequency-major (conv output (F, T) -> F*T), so this reshape is exact.
    return pos[:, :leading_tokens], pos[:, leading_tokens:].reshape(1, f0, t0, pos.shape[-1]).permute(0, 3, 1, 2)


def _embeddings_of(lead: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    f, t = grid.shape[2:]
    return torch.cat([lead, grid.permute(0, 2, 3, 1).reshape(1, f * t, grid.shape[1])], dim=1)


def interpolate_position_embeddings(pos: torch.Tensor, source_grid: tuple[int, int],
                                    target_grid: tuple[int, int], leading_tokens: int = 2) -> torch.Tensor:
    """Resample (1, leading + F*T, D) position embeddings from one patch grid to another."""
    lead, grid = _grid_of(pos, source_grid, leading_tokens)
    grid = F.interpolate(grid.float(), size=tuple(target_grid), mode="bilinear", align_corners=True).to(pos.dtype)
    return _embeddings_of(lead, grid)


def crop_position_embeddings(pos: torch.Tensor, source_grid: tuple[int, int],
                             target_grid: tuple[int, int], leading_tokens: int = 2) -> torch.Tensor:
    """The published AST rule: centre crop of an axis that shrinks, bilinear resampling of one that grows.

    Time first, then frequency, as in ast_models.py: ``start = int(old / 2) - int(new / 2)``.
    """
    (f0, t0), (f1, t1) = source_grid, target_grid
    lead, grid = _grid_of(pos, source_grid, leading_tokens)
    if t1 <= t0:
        start = t0 // 2 - t1 // 2
        grid = grid[:, :, :, start:start + t1]
    else:
        grid = F.interpolate(grid.float(), size=(f0, t1), mode="bilinear").to(pos.dtype)
    if f1 <= f0:
        start = f0 // 2 - f1 // 2
        grid = grid[:, :, start:start + f1, :]
    else:
        grid = F.interpolate(grid.float(), size=(f1, t1), mode="bilinear").to(pos.dtype)
    return _embeddings_of(lead, grid)


def _is_ast(arch: str) -> bool:
    from . import model_entry

    try:
        return model_entry(arch).family == "ast"
    except ModelError:
        return False


def new_run_model_args(arch: str, model_args: dict) -> dict:
    """The model settings a new run records: AST's ``pos_embed`` written out, so that a later change of
    the default cannot change what the run means."""
    return {**NEW_RUN_ARGS, **model_args} if _is_ast(arch) else dict(model_args)


def stored_run_model_args(arch: str, model_args: dict) -> dict:
    """The model settings of a stored run: one made before ``pos_embed`` existed resampled."""
    return {**STORED_RUN_ARGS, **model_args} if _is_ast(arch) else dict(model_args)


class ASTClassifier(RSCModel):
    def __init__(self, num_classes: int, config_kwargs: dict[str, Any],
                 overrides: dict[str, Any] | None = None, pos_embed: str = "crop") -> None:
        from transformers import ASTConfig, ASTModel

        if pos_embed not in POS_EMBED_MODES:
            raise ModelError(f"ast: unknown pos_embed {pos_embed!r} (expected one of {', '.join(POS_EMBED_MODES)})")
        self.pos_embed = pos_embed
        self.config = make_config(ASTConfig, config_kwargs, overrides or {}, "ast")
        super().__init__(num_classes, "ast", embedding_dim=self.config.hidden_size)
        self.backbone = ASTModel(self.config)
        self.head = nn.Sequential(nn.LayerNorm(self.config.hidden_size, eps=self.config.layer_norm_eps),
                                  nn.Linear(self.config.hidden_size, num_classes))

    def embed(self, x: torch.Tensor, text: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        self._check_input(x)
        want = (self.config.max_length, self.config.num_mel_bins)
        if tuple(x.shape[1:]) != want:
            raise ValueError(f"{self.arch}: expected features of shape (batch, {want[0]}, {want[1]}), "
                             f"got {tuple(x.shape)}")
        return self.backbone(input_values=x).pooler_output  # mean of the CLS and distillation tokens


def load_ast_checkpoint(model: ASTClassifier, pretrained: Any, hub_id: str) -> None:
    source_model, source = load_hf_model(pretrained, hub_id, "ASTForAudioClassification")
    source_grid, target_grid = patch_grid(source_model.config), patch_grid(model.config)
    state = source_model.state_dict()
    prefix = "audio_spectrogram_transformer."

    def rename(key: str) -> str | None:
        if key.startswith(prefix):
            return "backbone." + key[len(prefix):]
        if key.startswith("classifier.layernorm."):
            return "head.0." + key[len("classifier.layernorm."):]
        return None

    def adapt_positions(value: torch.Tensor, want: torch.Tensor) -> tuple[torch.Tensor, str]:
        grids = f"from a {source_grid[0]}x{source_grid[1]} to a {target_grid[0]}x{target_grid[1]} grid"
        if model.pos_embed == "resample":
            return interpolate_position_embeddings(value, source_grid, target_grid), f"interpolated {grids}"
        return crop_position_embeddings(value, source_grid, target_grid), f"centre-cropped (published AST rule) {grids}"

    report = load_state(model, state, source=source, rename=rename,
                        adapt={"backbone.embeddings.position_embeddings": adapt_positions})
    for key in report.skipped:
        if key.startswith("classifier.dense."):
            report.skipped[key] = "AudioSet head (527 classes)"
    report.notes += config_differences(model.config, source_model.config,
                                       ["hidden_size", "num_hidden_layers", "max_length", "num_mel_bins",
                                        "frequency_stride", "time_stride", "layer_norm_eps"])
    model.pretrained_report = report


def _build(num_classes: int, pretrained: Any, defaults: dict[str, Any], hub_id: str, overrides) -> ASTClassifier:
    overrides = dict(overrides)
    pos_embed = overrides.pop("pos_embed", NEW_RUN_ARGS["pos_embed"])
    model = ASTClassifier(num_classes, defaults, overrides, pos_embed=pos_embed)
    if pretrained is not None:
        if pretrained == "hub" and not hub_id:
            raise ModelError("ast-tiny has no Hub checkpoint; pass a local folder")
        load_ast_checkpoint(model, pretrained, hub_id)
    return model


@register_model("ast", feature_set="ast", family="ast", pretrained="hub or folder (AudioSet+ImageNet)",
                hub_id=AST_HUB_ID)
def ast(num_classes: int = 4, pretrained=None, **overrides) -> ASTClassifier:
    return _build(num_classes, pretrained, AST_FULL, AST_HUB_ID, overrides)


@register_model("ast-tiny", feature_set="ast", family="ast", pretrained="folder of the same shapes")
def ast_tiny(num_classes: int = 4, pretrained=None, **overrides) -> ASTClassifier:
    return _build(num_classes, pretrained, AST_TINY, "", overrides)
