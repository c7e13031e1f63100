"""The one owner of the ``runs`` and ``run_epochs`` tables.

A run row holds the resolved specification (``spec``), its status, live ``progress`` (phase, pid, host,
time: written while a process works on it) and, once done, its final ``metrics``, checkpoint and epoch.
``run_epochs`` holds one row per finished epoch. Every other module reads and writes runs through the
functions here and gets :class:`Run` objects with the JSON already parsed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..processes import host, owner_alive
from ..project import Project, ProjectError, now
from . import status as st


RUNS_FOLDER = "runs"  # inside the project's artifacts folder, one sub-folder per run


class RunError(ProjectError):
    """A run that does not exist or is in the wrong state for what was asked; the message says which."""


@dataclass
class Run:
    id: str
    group: str
    kind: str
    arch: str
    seed: int
    spec: dict = field(default_factory=dict)
    status: str = st.QUEUED
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    epoch: int = 0
    metrics: dict = field(default_factory=dict)
    progress: dict = field(default_factory=dict)
    checkpoint: str | None = None
    code_version: str | None = None
    data_fingerprint: str | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in st.FINISHED

    @property
    def active(self) -> bool:
        return self.status in st.ACTIVE

    def owner_alive(self) -> bool:
        """Whether the process recorded as working on this run still exists."""
        return owner_alive(self.progress.get("pid"), self.progress.get("host"))

    @property
    def owner_pid(self) -> int | None:
        return self.progress.get("pid")


def _loads(text: str | None) -> dict:
    return json.loads(text) if text else {}


def _run(row: dict) -> Run:
    return Run(
        id=row["id"], group=row["group_name"], kind=row["kind"], arch=row["arch"], seed=row["seed"],
        spec=_loads(row["spec"]), status=row["status"], created_at=row["created_at"],
        started_at=row["started_at"], finished_at=row["finished_at"], epoch=row["epoch"] or 0,
        metrics=_loads(row["metrics"]), progress=_loads(row["progress"]), checkpoint=row["checkpoint"],
        code_version=row["code_version"], data_fingerprint=row["data_fingerprint"], error=row["error"],
    )


# -- reading -------------------------------------------------------------------------------------
def run_exists(project: Project, run_id: str) -> bool:
    return project.db.execute("SELECT 1 FROM runs WHERE id = ?", [run_id]).fetchone() is not None


def get_run(project: Project, run_id: str) -> Run:
    rows = project.query("SELECT * FROM runs WHERE id = ?", [run_id])
    if not rows:
        raise RunError(f"no run {run_id!r} in {project.path.name} (list them with `rsc runs`)")
    return _run(rows[0])


def status_of(project: Project, run_id: str) -> str:
    row = project.db.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchone()
    if row is None:
        raise RunError(f"no run {run_id!r} in {project.path.name} (list them with `rsc runs`)")
    return row[0]


def list_runs(
    project: Project,
    group: str | None = None,
    status: str | Iterable[str] | None = None,
    group_prefix: str | None = None,
) -> list[Run]:
    """Runs ordered by group, seed and id; filtered by group, status(es) or group-name prefix."""
    where, params = [], []
    if group is not None:
        where.append("group_name = ?")
        params.append(group)
    if group_prefix is not None:
        escaped = group_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("group_name LIKE ? ESCAPE '\\'")
        params.append(escaped + "%")
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        where.append(f"status IN ({','.join('?' * len(statuses))})")
        params += statuses
    sql = "SELECT * FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "")
    return [_run(r) for r in project.query(sql + " ORDER BY group_name, seed, id", params)]


def group_names(project: Project) -> list[str]:
    return [r[0] for r in project.db.execute("SELECT DISTINCT group_name FROM runs ORDER BY 1")]


def queued_ids(project: Project) -> list[str]:
    """Queued runs in the order a worker takes them (oldest first)."""
    return [r[0] for r in project.db.execute(f"SELECT id FROM runs WHERE status = '{st.QUEUED}' ORDER BY created_at, id")]


def run_epochs(project: Project, run_id: str) -> list[dict]:
    """The per-epoch metrics of a run, oldest first, each with the time it was written (``at``)."""
    rows = project.db.execute("SELECT metrics, at FROM run_epochs WHERE run_id = ? ORDER BY epoch", [run_id])
    return [dict(json.loads(metrics), at=at) for metrics, at in rows]


def runs_version(project: Project) -> tuple:
    """A cheap summary that changes whenever any run's status, epoch, progress or metrics change."""
    return tuple(project.db.execute(
        "SELECT count(*), max(created_at), group_concat(id || ':' || status || ':' || coalesce(epoch, 0) || ':'"
        " || length(coalesce(progress, '')) || ':' || coalesce(finished_at, ''), ',') FROM runs"
    ).fetchone())


# -- writing -------------------------------------------------------------------------------------
def insert_run(
    project: Project, run_id: str, *, group: str, kind: str, arch: str, seed: int, spec: dict,
    status: str = st.QUEUED, code_version: str = "", data_fingerprint: str | None = None,
) -> Run:
    if status not in (st.QUEUED, st.RUNNING):
        raise ValueError(f"a new run starts queued or running, not {status!r}")
    with project.transaction():
        project.db["runs"].insert({
            "id": run_id, "group_name": group, "kind": kind, "arch": arch, "seed": int(seed),
            "spec": json.dumps(spec), "status": status, "created_at": now(), "epoch": 0,
            "code_version": code_version, "data_fingerprint": data_fingerprint,
        })
    return get_run(project, run_id)


def _progress_json(progress: dict) -> str:
    return json.dumps(dict(progress, pid=os.getpid(), host=host(), at=now()))


def claim(project: Project, run_id: str | None = None) -> str | None:
    """Atomically take a queued run (the given one, or the oldest) for this process; None if there is none.

    Two workers never get the same run: the update only succeeds while the run is still queued.
    """
    with project.transaction():
        if run_id is None:
            ids = queued_ids(project)
            if not ids:
                return None
            run_id = ids[0]
        cursor = project.db.execute(
            "UPDATE runs SET status = ?, progress = ? WHERE id = ? AND status = ?",
            [st.RUNNING, _progress_json({"phase": "claimed"}), run_id, st.QUEUED],
        )
        return run_id if cursor.rowcount == 1 else None


def claim_together(project: Project, run_ids: list[str]) -> bool:
    """Atomically take runs that train together (one collaborative job): all of them, or none.

    Runs this process already claimed count as taken; any other status (cancelled, failed, or a run
    another process took) refuses the whole set and changes nothing.
    """
    with project.transaction():
        for run_id in run_ids:
            status = status_of(project, run_id)
            if status != st.QUEUED and not (status == st.RUNNING and _claimed_here(project, run_id)):
                return False
        project.db.execute(
            f"UPDATE runs SET status = ?, progress = ? WHERE status = ? AND id IN ({', '.join('?' * len(run_ids))})",
            [st.RUNNING, _progress_json({"phase": "claimed"}), st.QUEUED, *run_ids],
        )
    return True


def _claimed_here(project: Project, run_id: str) -> bool:
    progress = get_run(project, run_id).progress or {}
    return progress.get("phase") == "claimed" and progress.get("pid") == os.getpid() and progress.get("host") == host()


def start(project: Project, run_id: str) -> str:
    """Mark a claimed or resumed run as running; returns ``cancelling``-turned-``cancelled`` or ``running``.

    A cancel that arrived between a worker's claim and the start must not be lost.
    """
    with project.transaction():
        if status_of(project, run_id) == st.CANCELLING:
            project.db.execute("UPDATE runs SET status = ? WHERE id = ?", [st.CANCELLED, run_id])
            return st.CANCELLED
        project.db.execute(
            "UPDATE runs SET status = ?, started_at = coalesce(started_at, ?), error = NULL, progress = ? WHERE id = ?",
            [st.RUNNING, now(), _progress_json({"phase": "start"}), run_id],
        )
    return st.RUNNING


def write_progress(project: Project, run_id: str, progress: dict) -> None:
    """Live phase of a run for viewers (phase, done/total, epoch, ETA); stamped with pid, host and time."""
    with project.transaction():
        project.db.execute("UPDATE runs SET progress = ? WHERE id = ?", [_progress_json(progress), run_id])


def set_data_fingerprint(project: Project, run_id: str, fingerprint: str) -> None:
    with project.transaction():
        project.db.execute("UPDATE runs SET data_fingerprint = ? WHERE id = ?", [fingerprint, run_id])


def record_epoch(project: Project, run_id: str, epoch: int, metrics: dict) -> None:
    """Store one finished epoch (replacing a redone one) and advance the run's epoch counter."""
    with project.transaction():
        project.db.execute(
            "INSERT OR REPLACE INTO run_epochs(run_id, epoch, metrics, at) VALUES (?, ?, ?, ?)",
            [run_id, int(epoch), json.dumps(metrics), now()],
        )
        project.db.execute("UPDATE runs SET epoch = ? WHERE id = ?", [int(epoch), run_id])


def truncate_epochs(project: Project, run_id: str, keep_through: int) -> None:
    """Forget epochs after ``keep_through`` (0: all), as when resuming from an older checkpoint."""
    with project.transaction():
        project.db.execute("DELETE FROM run_epochs WHERE run_id = ? AND epoch > ?", [run_id, int(keep_through)])
        project.db.execute("UPDATE runs SET epoch = ? WHERE id = ?", [int(keep_through), run_id])


def reset_results(project: Project, run_id: str) -> None:
    """A fresh start: no epochs, no outputs and no final metrics of an earlier attempt stay."""
    with project.transaction():
        project.db.execute("DELETE FROM run_epochs WHERE run_id = ?", [run_id])
        project.db.execute("DELETE FROM outputs WHERE run_id = ?", [run_id])
        project.db.execute("UPDATE runs SET epoch = 0, metrics = NULL WHERE id = ?", [run_id])


def finish(project: Project, run_id: str, *, metrics: dict, checkpoint: str | None, epoch: int) -> None:
    """The run is done: final metrics, the selected checkpoint, the last epoch; live progress cleared.

    Call inside the transaction that stores the run's logits, so a done run always has them.
    """
    with project.transaction():
        project.db.execute(
            "UPDATE runs SET status = ?, finished_at = ?, metrics = ?, checkpoint = ?, epoch = ?, error = NULL,"
            " progress = NULL WHERE id = ?",
            [st.DONE, now(), json.dumps(metrics), checkpoint, int(epoch), run_id],
        )


def mark_cancelled(project: Project, run_id: str, epoch: int, progress: dict | None = None) -> None:
    with project.transaction():
        project.db.execute(
            "UPDATE runs SET status = ?, epoch = ?, progress = ? WHERE id = ?",
            [st.CANCELLED, int(epoch), json.dumps(dict(progress or {}, phase="cancelled")), run_id],
        )


def mark_failed(project: Project, run_id: str, error: str) -> None:
    with project.transaction():
        project.db.execute("UPDATE runs SET status = ?, error = ? WHERE id = ?", [st.FAILED, error, run_id])


def cancel(project: Project, run_id: str) -> str:
    """Ask a run to stop; returns its new status.

    A queued run is cancelled at once; a running one becomes ``cancelling`` and its process stops at the
    next batch; a running run whose process is gone (killed) is cancelled, as there is nothing to wait for.
    A model of a collaborative job takes its queued peers with it (a running job stops whole anyway).
    """
    with project.transaction():
        run = get_run(project, run_id)
        if run.status == st.QUEUED:
            new = st.CANCELLED
        elif run.status == st.RUNNING:
            new = st.CANCELLING if run.owner_alive() else st.CANCELLED
        elif run.status in (st.CANCELLING, st.CANCELLED):
            return run.status
        else:
            raise RunError(f"run {run_id} is {run.status}; only queued or running runs can be cancelled")
        project.db.execute("UPDATE runs SET status = ? WHERE id = ?", [new, run_id])
        if new == st.CANCELLED and run.kind == st.LOCKSTEP_KIND:
            # Its peers train only with it: left queued, they would wait for a job that can no longer run.
            peers = list((run.spec.get("targets") or {}).get("peers") or [])
            if peers:
                project.db.execute(f"UPDATE runs SET status = ? WHERE status = ? AND id IN ({', '.join('?' * len(peers))})",
                                   [st.CANCELLED, st.QUEUED, *peers])
    return new


def check_not_owned(run: Run) -> None:
    """Refuse to touch a run that a live process is training."""
    if run.active and run.owner_alive():
        raise RunError(f"run {run.id} is being trained by process {run.owner_pid}; cancel it first with `rsc cancel`")


def requeue(project: Project, run_id: str) -> None:
    """Put a cancelled, failed or killed run back in the queue; a worker continues it from its checkpoint."""
    with project.transaction():
        run = get_run(project, run_id)
        if run.finished:
            raise RunError(f"run {run_id} is already done")
        if run.kind == st.LOCKSTEP_KIND:
            raise RunError(f"run {run_id} is one model of a collaborative job, whose models train together from "
                           "the first epoch: it cannot resume; run the job again (Run again, or rsc distill --mode collab)")
        check_not_owned(run)
        project.db.execute("UPDATE runs SET status = ?, error = NULL WHERE id = ?", [st.QUEUED, run_id])


def run_folder(project: Project, run_id: str) -> Path:
    """Where a run's checkpoints live (``<project>.d/runs/<run id>/``)."""
    return project.artifacts / RUNS_FOLDER / run_id


def remove_run(project: Project, run_id: str) -> None:
    """Delete a run: its row, its epochs, its stored outputs and its checkpoint folder.

    A run that a live process is training is refused (cancel it first); the rows go in one transaction,
    so a worker can never claim a queued run halfway through its removal. The folder goes after the
    commit: a crash in between leaves only files that no run names.
    """
    folder = run_folder(project, run_id)
    # An id such as "..", "a/b" or "../x" must never lead the removal to other files.
    if run_id in ("", ".", "..") or folder.name != run_id or folder.parent != project.artifacts / RUNS_FOLDER:
        raise RunError(f"run id {run_id!r} cannot name a checkpoint folder")
    with project.transaction():
        check_not_owned(get_run(project, run_id))
        project.db.execute("DELETE FROM outputs WHERE run_id = ?", [run_id])
        project.db.execute("DELETE FROM run_epochs WHERE run_id = ?", [run_id])
        project.db.execute("DELETE FROM runs WHERE id = ?", [run_id])
    shutil.rmtree(folder, ignore_errors=True)


def summary(runs: Iterable[Run]) -> dict[str, Any]:
    """Counts per status, for one-line overviews."""
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    return counts
