"""Where a run's result came from: the code version and a fingerprint of the data it saw."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

from .. import __version__, runs
from ..project import Project
from .spec import TrainError


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """`git describe` of the source tree where it is a checkout, else the package version."""
    root = Path(__file__).resolve().parents[2]
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "describe", "--always", "--dirty", "--tags"],
                cwd=root, capture_output=True, text=True, timeout=10,
            )
            if out.returncode == 0 and out.stdout.strip():
                return f"{__version__}+git.{out.stdout.strip()}"
        except (OSError, subprocess.SubprocessError):
            pass
    return __version__


def data_fingerprint(project: Project, train_rows: list[dict], test_rows: list[dict]) -> str:
    """Hash of which cycles a run sees, their boundaries, audio content, split and label."""
    digest = hashlib.sha256()
    ids = [r["id"] for r in train_rows] + [r["id"] for r in test_rows]
    digest.update(project.cycle_set_fingerprint(ids).encode())
    for row in (*train_rows, *test_rows):
        digest.update(f"{row['id']}:{row['split']}:{row['label']};".encode())
    return digest.hexdigest()


def confirm_data(project: Project, run: runs.Run, fingerprint: str, resuming: bool) -> str:
    """The fingerprint the run trains on (its cycle set's, so the same as when it was made), checked once more.

    Only a run made before cycle sets can differ: queued, it takes the set it was given now; with a
    checkpoint it is refused, as that checkpoint was trained on other data.
    """
    if fingerprint == run.data_fingerprint:
        return fingerprint
    if resuming:
        raise TrainError(
            f"run {run.id}: the project's cycles, labels or audio changed since this run started; "
            "its checkpoint no longer matches the data (start a new run instead)"
        )
    runs.set_data_fingerprint(project, run.id, fingerprint)
    return fingerprint
