"""Training runs: the one owner of the ``runs``, ``run_epochs`` and ``outputs`` tables."""

from .outputs import OutputsError, delete_outputs, load_logits, run_cycle_ids, store_logits
from .status import (
    ACTIVE, CANCELLED, CANCELLING, DONE, FAILED, FINISHED, LOCKSTEP_KIND, QUEUED, RUNNING, STATUSES, STOPPED,
)
from .store import (
    Run, RunError, cancel, check_not_owned, claim, claim_together, finish, get_run, group_names, insert_run, list_runs,
    mark_cancelled, mark_failed, queued_ids, record_epoch, remove_run, requeue, reset_results, run_epochs, run_exists,
    run_folder, runs_version, set_data_fingerprint, start, status_of, summary, truncate_epochs, write_progress,
)

__all__ = [
    "ACTIVE", "CANCELLED", "CANCELLING", "DONE", "FAILED", "FINISHED", "LOCKSTEP_KIND", "QUEUED", "RUNNING", "STATUSES", "STOPPED",
    "OutputsError", "Run", "RunError", "cancel", "check_not_owned", "claim", "claim_together", "delete_outputs", "finish", "get_run",
    "group_names", "insert_run", "list_runs", "load_logits", "mark_cancelled", "mark_failed", "queued_ids",
    "record_epoch", "remove_run", "requeue", "reset_results", "run_cycle_ids", "run_epochs", "run_exists", "run_folder",
    "runs_version", "set_data_fingerprint", "start", "status_of", "store_logits", "summary", "truncate_epochs",
    "write_progress",
]

# Checkpoint checksums and the cycle sets of groups (schema 4).
from .checkpoints import CheckpointRecord, checkpoint_records, forget_checkpoints, record_checkpoint  # noqa: E402
from .cycle_sets import (  # noqa: E402
    CycleSet, SetChanges, assign_cycle_set, fix_cycle_set, group_cycle_set, live_cycles, members_of,
    read_cycle_set, run_cycle_set, shared_cycle_set,
)

__all__ += [
    "CheckpointRecord", "CycleSet", "SetChanges", "assign_cycle_set", "checkpoint_records", "fix_cycle_set",
    "forget_checkpoints", "group_cycle_set", "live_cycles", "members_of", "read_cycle_set", "record_checkpoint",
    "run_cycle_set", "shared_cycle_set",
]
