"""Tasks: what a batch's loss is. A teacher and a student differ only by task, never by loop (timm's ``task``).

Each task has ``forward(model, batch) -> (loss, logits)``; the loop runs it under autocast where the
run asks for it (the loss ops run in float32 there, on the float32 logits).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..distill import TargetProvider, distillation_loss
from .spec import TrainSpec


@dataclass
class Batch:
    """One training batch: inputs, optional text, labels, and its positions among the fitted cycles."""

    x: torch.Tensor
    text: object
    labels: torch.Tensor
    positions: torch.Tensor


class HardLabelTask:
    """Cross-entropy with the labels: a teacher, or a student at k = 0."""

    def start_epoch(self, epoch_index: int) -> None:
        """Nothing changes between epochs."""

    def forward(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(batch.x, text=batch.text).float()
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
        loss = distillation_loss(
            logits, self.epoch_targets[batch.positions], batch.labels, self.mode,
            temperature=self.temperature, hard_weight=self.hard_weight,
        )
        return loss, logits


def task_for(spec: TrainSpec, provider: TargetProvider | None, device: torch.device) -> HardLabelTask | SoftLabelTask:
    """The task a resolved spec asks for; ``provider`` holds a student's targets."""
    if spec.targets["kind"] == "soft":
        return SoftLabelTask(provider, spec.targets, device)
    return HardLabelTask()
