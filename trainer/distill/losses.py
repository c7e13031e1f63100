"""The distillation loss: cross-entropy against soft target rows, optionally mixed with the hard labels.

Temperature T (default 1, as in the paper) divides the teacher logits before the softmax (see
:mod:`trainer.distill.targets`); the loss applies the same T to the student and multiplies the soft
term by T^2 so its gradient keeps the same scale as at T = 1 (Hinton et al. 2015). At T = 1 the factor
is 1 and the loss is exactly the paper's cross-entropy H(p, y_hat).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .modes import MODES, DistillError


def soft_cross_entropy(student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_c t_c log softmax(s)_c; t need not be a distribution."""
    return -(targets * F.log_softmax(student_logits, dim=-1)).sum(dim=-1).mean()


def distillation_loss(
    student_logits: torch.Tensor,
    targets: torch.Tensor | None,
    labels: torch.Tensor | None,
    mode: str,
    temperature: float = 1.0,
    hard_weight: float = 0.0,
) -> torch.Tensor:
    """(1 - hard_weight) * T^2 * CE(targets, softmax(student / T)) + hard_weight * CE(labels, student).

    ``targets`` are rows from :meth:`TargetProvider.targets` (already at temperature T). In mode
    ``hard`` the soft term is plain cross-entropy with the labels. The paper's setting is T = 1 and
    hard_weight = 0 (soft targets only).
    """
    if mode not in MODES:
        raise DistillError(f"unknown target mode {mode!r}")
    if not 0.0 <= hard_weight <= 1.0:
        raise DistillError(f"hard-label weight must lie in [0, 1], got {hard_weight}")
    if not temperature > 0:
        raise DistillError(f"temperature must be positive, got {temperature}")
    if mode == "hard":
        if labels is None:
            raise DistillError("mode 'hard' needs labels")
        return F.cross_entropy(student_logits, labels)
    if targets is None:
        raise DistillError(f"mode {mode!r} needs target rows")
    targets = targets.to(device=student_logits.device, dtype=student_logits.dtype)
    soft = soft_cross_entropy(student_logits / temperature, targets)
    if temperature != 1.0:
        soft = soft * (temperature**2)
    if hard_weight == 0.0:
        return soft
    if labels is None:
        raise DistillError("a hard-label weight above 0 needs labels")
    hard = F.cross_entropy(student_logits, labels)
    return (1.0 - hard_weight) * soft + hard_weight * hard
