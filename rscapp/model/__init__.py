"""The app's model layer: QObjects over the project that emit change signals; the one place that polls."""

from .changes import Changes, ChangeTracker
from .project_model import POLL_MS, ProjectModel

__all__ = ["POLL_MS", "ChangeTracker", "Changes", "ProjectModel"]
