"""Distillation: soft-label targets from stored teacher logits, the loss, and the choice of teachers."""

from .losses import distillation_loss, soft_cross_entropy
from .modes import DEFAULT_NUM_CLASSES, MODES, STOCHASTIC_MODES, TEACHER_MODES, VIEW_MODES, DistillError
from .targets import TargetProvider
from .teachers import SELECTION_MODES, select_teachers, selection_for_mode, selection_score

__all__ = [
    "DEFAULT_NUM_CLASSES", "MODES", "SELECTION_MODES", "STOCHASTIC_MODES", "TEACHER_MODES", "VIEW_MODES", "DistillError",
    "TargetProvider", "distillation_loss", "select_teachers", "selection_for_mode", "selection_score",
    "soft_cross_entropy",
]
