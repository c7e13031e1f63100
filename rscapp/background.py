"""Work the main window runs on pool threads (:mod:`rscapp.workers`): no widgets, each on its own
project connection; the model notices what they wrote."""

from __future__ import annotations

import shutil
from pathlib import Path

from trainer.project import Project


def run_import(kind: str, project_path: str, directory: str, labels_csv: str | None, progress=None):
    from trainer.data.folder import import_folder
    from trainer.data.icbhi import import_icbhi

    with Project.open(project_path) as project:
        if kind == "icbhi":
            return import_icbhi(project, directory, progress=progress)
        if kind == "folder":
            return import_folder(project, directory, labels_csv=labels_csv, progress=progress)
        raise ValueError(f"unknown import kind {kind!r}")


def create_demo(path: str, progress=None) -> str:
    from trainer.data.demo import create_demo_project

    create_demo_project(path, progress=progress).close()
    return path


def remove_project(path: str | Path) -> None:
    """Remove a half-made demo project (only ever our own file in the per-user data folder)."""
    path = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.rmtree(Project.artifacts_of(path), ignore_errors=True)
