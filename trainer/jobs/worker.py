"""The one worker loop: claim a queued run, train it, go on with the next."""

from __future__ import annotations

import os
import time
from typing import Callable, Sequence

from .. import runs
from ..project import Project
from ..train import RunStopped, run_training
from ..train.collab import train_collab
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
            run = runs.get_run(project, run_id)
            if run.kind == runs.LOCKSTEP_KIND:
                handled.extend(_train_lockstep(project, run, progress, should_exit))
            else:
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
    _reported(progress, [run_id], lambda: run_training(project, run_id, progress=progress, should_stop=should_exit))


def _reported(progress, run_ids: list[str], train: Callable[[], object]) -> None:
    """Train, telling ``progress`` of the start of each run and of a failure, which the trainer has
    recorded on the runs: the queue goes on after it."""
    if progress is not None:
        for run_id in run_ids:
            progress({"phase": "start", "run_id": run_id})
    try:
        train()
    except RunStopped:
        pass
    except Exception as exc:
        if progress is not None:
            progress({"phase": "failed", "run_id": run_ids[0], "error": f"{type(exc).__name__}: {exc}"})


def _train_lockstep(project: Project, run: runs.Run, progress, should_exit) -> list[str]:
    """Train a collaborative job whose first run this worker claimed: every model of it, together.

    Returns the peers it worked on. A job of which a model was cancelled or taken elsewhere while queued
    cannot train (its models learn from each other from the first epoch): its queued runs are failed
    with that reason, and the queue goes on.
    """
    peers = list((run.spec.get("targets") or {}).get("peers") or [])
    job = [run.id, *peers]
    if not runs.claim_together(project, job):
        reason = (f"collaborative job {', '.join(job)}: not every model of it was queued (one was cancelled, "
                  "removed or taken by another worker), and its models train only together; run the job again")
        for run_id in job:  # ours, and the queued ones that would wait for ever; never another worker's
            if run_id == run.id or (runs.run_exists(project, run_id) and runs.status_of(project, run_id) == runs.QUEUED):
                runs.mark_failed(project, run_id, reason)
        if progress is not None:
            progress({"phase": "failed", "run_id": run.id, "error": reason})
        return []
    _reported(progress, job, lambda: train_collab(project, job, progress=progress, should_stop=should_exit))
    return peers
