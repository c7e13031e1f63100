"""The Classify view: a trained or exported model labels the cycles of recordings, inside a project or not."""

from .view import ClassifyView

__all__ = ["ClassifyView"]
