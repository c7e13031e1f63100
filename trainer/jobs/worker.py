"""The one worker loop: claim a queued run, train it, go on with the next."""

from __future__ import annotations

import os
import time
from typing import Callable, Sequence

from .. import runs
from ..project import Project
from ..train import RunStopped, run_training
from .process import worker_marker


def run_worker(
    project_path: str | os.PathLike,
    once: bool = True,
    poll_seconds: float = 2.0,
    progress: Callable[[dict], object] | None = None,
    should_exit: Callable[[], bool] | None = None,
    only: Sequence[str] | None = None,
) -> list[str]:
    """Train queued runs in this process, oldest first; returns the ids it worked on, in order.

    ``only``: train just these runs, in this order, skipping any that is not queued when its turn
    comes; each is worked on at most once. ``once``: stop when there is nothing left to take;
    otherwise keep polling until ``should_exit()`` says so (it is also passed to training, which then
    stops after its batch, keeping its checkpoint). A failed or cancelled run is recorded on the run
    and the worker goes on with the next.
    """
    wanted = None if only is None else list(only)
    handled: list[str] = []
    with Project.open(project_path) as project, worker_marker(project.path):
        while not (should_exit and should_exit()):
            run_id = _claim_next(project, wanted, handled)
            if run_id is None:
                if once:
                    break
                time.sleep(poll_seconds)
                continue
            handled.append(run_id)
            _train_claimed(project, run_id, progress, should_exit)
    return handled


def _claim_next(project: Project, wanted: list[str] | None, handled: list[str]) -> str | None:
    if wanted is None:
        return runs.claim(project)
    for run_id in wanted:
        if run_id not in handled and runs.claim(project, run_id) is not None:
            return run_id
    return None


def _train_claimed(project: Project, run_id: str, progress, should_exit) -> None:
    if progress is not None:
        progress({"phase": "start", "run_id": run_id})
    try:
        run_training(project, run_id, progress=progress, should_stop=should_exit)
    except RunStopped:
        pass
    except Exception as exc:  # recorded on the run by run_training; the queue goes on
        if progress is not None:
            progress({"phase": "failed", "run_id": run_id, "error": f"{type(exc).__name__}: {exc}"})
