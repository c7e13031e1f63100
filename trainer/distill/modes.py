"""The soft-label target modes, which of them read teachers or change per epoch, and the one error type."""

from __future__ import annotations

MODES = ("hard", "mean", "random", "curated", "single", "noise-const", "noise-teacher-var", "raw-logits", "ced")
# Modes whose targets come from teacher logits (the rest need only the labels).
TEACHER_MODES = ("mean", "random", "curated", "single", "noise-teacher-var", "raw-logits")
# Modes whose targets are not rows of stored teacher logits on the plain cycles: CED's come from the
# teachers' passes over augmented views (trainer.distill.ced), made by `rsc logits`.
VIEW_MODES = ("ced",)
# Modes whose targets change from epoch to epoch.
STOCHASTIC_MODES = ("random", "noise-const", "noise-teacher-var")
DEFAULT_NUM_CLASSES = 4


class DistillError(ValueError):
    """Bad distillation settings or teacher data (message names what is wrong)."""
