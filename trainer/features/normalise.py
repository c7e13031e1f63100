"""The two normalisations of a filterbank: AudioSet statistics (ast) and per sample (cnn)."""

from __future__ import annotations

import math

import torch

AST_MEAN = -4.2677393
AST_STD = 4.5689974


def ast_normalize(fbank: torch.Tensor) -> torch.Tensor:
    """AudioSet statistics of the AST checkpoints: (x + 4.2677393) / (2 * 4.5689974)."""
    return (fbank - AST_MEAN) / (2.0 * AST_STD)


def per_sample_normalize(fbank: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """(x - mean) / (2 * std) per sample over time and frequency; (T, F) or (B, T, F).

    ``std`` is torch's default (Bessel-corrected), as in the reference CNN code. A sample whose std is
    below ``eps`` (a silent cycle: a constant filterbank) gives zeros instead of NaN or noise.
    """
    if fbank.ndim == 2:
        return per_sample_normalize(fbank.unsqueeze(0), eps)[0]
    batch = fbank.shape[0]
    n = fbank[0].numel()
    # Two passes (mean, then the spread of the centred values) instead of torch.var_mean, which is
    # 10x slower on CPU; centring first keeps the variance exact for near-constant inputs too.
    mean = fbank.reshape(batch, -1).sum(dim=1) / n
    centred = fbank - mean[:, None, None]
    std = torch.linalg.vector_norm(centred.reshape(batch, -1), dim=1) / math.sqrt(max(n - 1, 1))
    scale = torch.where(std > eps, 0.5 / std.clamp_min(eps), torch.zeros_like(std))
    return centred.mul_(scale[:, None, None])


