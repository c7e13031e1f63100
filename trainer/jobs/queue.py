"""Putting work in the queue: a job is a run stored as ``queued``."""

from __future__ import annotations

from .. import runs
from ..project import Project
from ..train import TrainSpec, create_run


def submit(project: Project, spec: TrainSpec) -> str:
    """Store a job (a queued run, its spec checked first); returns its run id."""
    return create_run(project, spec, status=runs.QUEUED)
