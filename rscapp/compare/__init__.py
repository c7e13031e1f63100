"""The Compare view: runs grouped by seed, ensembles against distilled students, significance, label review."""

from .view import CompareView

__all__ = ["CompareView"]
