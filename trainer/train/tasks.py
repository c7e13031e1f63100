"""Tasks: what a batch's loss is. A teacher and a student differ only by task, never by loop (timm's ``task``).

Each task has ``forward(model, batch) -> (loss, logits)``; the loop runs it under autocast where the
run asks for it (the loss ops run in float32 there, on the float32 logits).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..distill import TargetProvider, distillation_loss
from .spec import TrainSpec


@dataclass
class Batch:
    """One training batch: inputs, optional text, labels, and its positions among the fitted cycles.

    ``class_weights`` (one per class) asks for the class-balanced loss (``balance="loss"``)."""

    x: torch.Tensor
    text: object
    labels: torch.Tensor
    positions: torch.Tensor
    class_weights: torch.Tensor | None = None


def class_weights(labels: torch.Tensor, num_classes: int = 4) -> torch.Tensor:
    """n / (classes present x n_c) per class: every present class weighs the same in total; absent ones 0.

    The weights of the class-balanced loss, and per cycle the draw probabilities of the balanced sampler.
    """
    counts = torch.bincount(labels.reshape(-1).cpu(), minlength=num_classes).double()
    present = int((counts > 0).sum())
    weights = labels.numel() / (max(present, 1) * counts.clamp(min=1))
    return torch.where(counts > 0, weights, torch.zeros_like(counts)).float()


def balanced_loss(logits: torch.Tensor, targets: torch.Tensor | None, labels: torch.Tensor, weights: torch.Tensor,
                  temperature: float = 1.0, hard_weight: float = 0.0) -> torch.Tensor:
    """:func:`trainer.distill.distillation_loss` with each cycle weighted by its label's class weight.

    The weighted mean divides by the batch's summed weights, as ``F.cross_entropy(weight=...)`` does;
    with equal weights it is exactly the unweighted loss (a test holds the two together).
    """
    w = weights.to(logits.device)[labels]
    w = w / w.sum().clamp(min=torch.finfo(w.dtype).tiny)
    hard = F.cross_entropy(logits, labels, reduction="none")
    if targets is None:
        return (w * hard).sum()
    targets = targets.to(device=logits.device, dtype=logits.dtype)
    soft = -(targets * F.log_softmax(logits / temperature, dim=-1)).sum(dim=-1) * (temperature**2)
    return (w * ((1.0 - hard_weight) * soft + hard_weight * hard)).sum()


class HardLabelTask:
    """Cross-entropy with the labels: a teacher, or a student at k = 0."""

    def start_epoch(self, epoch_index: int) -> None:
        """Nothing changes between epochs."""

    def forward(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(batch.x, text=batch.text).float()
        if batch.class_weights is not None:
            return balanced_loss(logits, None, batch.labels, batch.class_weights), logits
        return distillation_loss(logits, None, batch.labels, "hard"), logits


class SoftLabelTask:
    """Cross-entropy with soft targets from stored teacher logits (redrawn per epoch in stochastic modes)."""

    def __init__(self, provider: TargetProvider, targets: dict, device: torch.device):
        self.provider, self.device = provider, device
        self.mode, self.temperature, self.hard_weight = targets["mode"], targets["temperature"], targets["hard_weight"]
        self.epoch_targets: torch.Tensor | None = None

    def start_epoch(self, epoch_index: int) -> None:
        self.epoch_targets = self.provider.targets(epoch_index).to(self.device)

    def forward(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(batch.x, text=batch.text).float()
        return self.soft_loss(logits, batch), logits

    def soft_loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The loss against this epoch's targets of the batch (class-weighted when the batch asks for it)."""
        targets = self.epoch_targets[batch.positions]
        if batch.class_weights is not None:
            return balanced_loss(logits, targets, batch.labels, batch.class_weights,
                                 temperature=self.temperature, hard_weight=self.hard_weight)
        return distillation_loss(logits, targets, batch.labels, self.mode,
                                 temperature=self.temperature, hard_weight=self.hard_weight)


def task_for(spec: TrainSpec, provider: TargetProvider | None, device: torch.device) -> HardLabelTask | SoftLabelTask:
    """The task a resolved spec asks for; ``provider`` holds a student's targets."""
    if spec.targets["kind"] == "soft":
        return SoftLabelTask(provider, spec.targets, device)
    return HardLabelTask()
