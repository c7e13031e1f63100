"""Worker processes: starting one for the GUI, and knowing which are alive (pid markers)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from ..processes import pid_alive
from ..project import Project, now

WORKER_LOG = "worker.log"


def _artifacts(project_path: str | os.PathLike) -> Path:
    return Project.artifacts_of(Path(project_path).resolve())


def _worker_dir(project_path: str | os.PathLike) -> Path:
    return _artifacts(project_path) / "workers"


@contextlib.contextmanager
def worker_marker(project_path: str | os.PathLike) -> Iterator[Path]:
    """A file named by this process's pid while it works as the project's worker."""
    marker = _worker_dir(project_path) / str(os.getpid())
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(now())
    try:
        yield marker
    finally:
        marker.unlink(missing_ok=True)


def worker_pids(project_path: str | os.PathLike) -> list[int]:
    """Process ids of the workers alive on this machine for a project (the GUI starts one only if none)."""
    folder = _worker_dir(project_path)
    alive = []
    for entry in folder.glob("*") if folder.is_dir() else []:
        if entry.name.isdigit() and pid_alive(int(entry.name)):
            alive.append(int(entry.name))
        else:  # a worker killed without cleaning up
            entry.unlink(missing_ok=True)
    return sorted(alive)


def worker_command(project_path: str | os.PathLike, once: bool = True) -> list[str]:
    code = "import sys; from trainer.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, "worker", str(project_path)] + (["--once"] if once else [])


def start_worker_process(project_path: str | os.PathLike, once: bool = True) -> subprocess.Popen:
    """Start ``rsc worker`` as a separate process (for the GUI); its output goes to <project>.d/worker.log."""
    project_path = Path(project_path).resolve()
    log_dir = _artifacts(project_path)
    log_dir.mkdir(exist_ok=True)
    env = dict(os.environ)
    # The child must import this same trainer package, wherever it was imported from.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    kwargs: dict = {}
    if os.name == "posix":
        kwargs["start_new_session"] = True  # the worker outlives a closed GUI window
    else:
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    with open(log_dir / WORKER_LOG, "ab") as log:
        return subprocess.Popen(
            worker_command(project_path, once), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=str(project_path.parent), **kwargs,
        )
