"""Train: job dialogs (teacher ensemble, student, teacher-count sweep), the queue, and the worker process."""

from .view import TrainView

__all__ = ["TrainView"]
