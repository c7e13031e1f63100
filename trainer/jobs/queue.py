"""Putting work in the queue: a job is a run stored as ``queued`` (a collaborative job: one per model)."""

from __future__ import annotations

from .. import runs
from ..project import Project, ProjectError
from ..train import TrainError, TrainSpec, create_run
from ..train.collab import create_collab_runs
from .specs import CollabJobs


def submit(project: Project, spec: TrainSpec) -> str:
    """Store a job (a queued run, its spec checked first); returns its run id."""
    return create_run(project, spec, status=runs.QUEUED)


def submit_collab(project: Project, jobs: CollabJobs) -> list[str]:
    """Queue each seed's collaborative job (its runs in one transaction); returns every run id.

    A worker that claims one run of a job trains all of them together. Jobs stored before a refused
    one stay queued, as :func:`submit` leaves the runs before a refused spec.
    """
    ids: list[str] = []
    for specs in jobs.jobs:
        try:
            ids += create_collab_runs(project, specs, jobs.collab.peer_weight, jobs.collab.temperature, jobs.group,
                                      status=runs.QUEUED)
        except TrainError as exc:
            raise ProjectError(str(exc) if not ids else f"queued {len(ids)} runs; then: {exc}") from None
    return ids


def submit_collab_again(project: Project, run_id: str) -> list[str]:
    """Queue the whole collaborative job of ``run_id`` again: every model, the same settings and group."""
    run = runs.get_run(project, run_id)
    targets = run.spec.get("targets") or {}
    if run.kind != runs.LOCKSTEP_KIND or targets.get("kind") != runs.LOCKSTEP_KIND:
        raise ProjectError(f"run {run_id} is not a model of a collaborative job")
    members = [run] + [runs.get_run(project, peer) for peer in targets.get("peers") or []]
    group = targets.get("job_group") or _job_group(run)
    specs = [TrainSpec.from_dict(dict(m.spec, targets={"kind": "hard"})) for m in members]
    try:
        return create_collab_runs(project, specs, float(targets.get("peer_weight", 1.0)),
                                  float(targets.get("temperature", 1.0)), group, status=runs.QUEUED)
    except TrainError as exc:
        raise ProjectError(str(exc)) from None


def _job_group(run: runs.Run) -> str:
    """The job's group of a run stored before ``job_group`` was: its group less ``-<representation>``."""
    suffix = f"-{run.spec.get('feature_set')}"
    return run.group[: -len(suffix)] if run.group.endswith(suffix) else run.group
