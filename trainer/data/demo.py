"""The built-in demo project: a synthetic ICBHI-layout dataset imported into a new project."""

from __future__ import annotations

from pathlib import Path

from ..project import Project
from .icbhi import import_icbhi
from .synth import write_synthetic_dataset


def create_demo_project(path: str | Path, recordings: int = 24, seed: int = 0, progress=None) -> Project:
    """Write the synthetic recordings into ``<project>.d/demo-audio`` and import them into a new project.

    ``progress(done, total)`` counts writing and importing each recording as one step each.
    """
    path = Path(path)
    project = Project.create(path)
    try:
        audio = project.artifacts / "demo-audio"
        write = (lambda done, total: progress(done, 2 * total)) if progress else None
        read = (lambda done, total: progress(total + done, 2 * total)) if progress else None
        write_synthetic_dataset(audio, recordings=recordings, seed=seed, progress=write)
        import_icbhi(project, audio, progress=read)
    except BaseException:
        project.close()
        raise
    return project
