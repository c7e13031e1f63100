"""Training runs: the one owner of the ``runs``, ``run_epochs`` and ``outputs`` tables."""

from .outputs import OutputsError, delete_outputs, load_logits, run_cycle_ids, store_logits
from .status import ACTIVE, CANCELLED, CANCELLING, DONE, FAILED, FINISHED, QUEUED, RUNNING, STATUSES, STOPPED
from .store import (
    Run, RunError, cancel, check_not_owned, claim, finish, get_run, group_names, insert_run, list_runs,
    mark_cancelled, mark_failed, queued_ids, record_epoch, requeue, reset_results, run_epochs, run_exists,
    runs_version, set_data_fingerprint, start, status_of, summary, truncate_epochs, write_progress,
)

__all__ = [
    "ACTIVE", "CANCELLED", "CANCELLING", "DONE", "FAILED", "FINISHED", "QUEUED", "RUNNING", "STATUSES", "STOPPED",
    "OutputsError", "Run", "RunError", "cancel", "check_not_owned", "claim", "delete_outputs", "finish", "get_run",
    "group_names", "insert_run", "list_runs", "load_logits", "mark_cancelled", "mark_failed", "queued_ids",
    "record_epoch", "requeue", "reset_results", "run_cycle_ids", "run_epochs", "run_exists", "runs_version",
    "set_data_fingerprint", "start", "status_of", "store_logits", "summary", "truncate_epochs", "write_progress",
]
