"""The statuses of a run, and which of them mean what. Nothing else spells them."""

from __future__ import annotations

QUEUED = "queued"
RUNNING = "running"
CANCELLING = "cancelling"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"

STATUSES = (QUEUED, RUNNING, CANCELLING, DONE, FAILED, CANCELLED)
# A run whose final metrics, checkpoint and logits are stored: the only status training writes at the end.
FINISHED = (DONE,)
# A process is (or was, if it died) training the run.
ACTIVE = (RUNNING, CANCELLING)
# Stopped before the end; `rsc resume` continues it from its last checkpoint.
STOPPED = (FAILED, CANCELLED)

# The kind of a run that trains only together with its peers (one collaborative job): it cannot be
# resumed alone, nor claimed alone.
LOCKSTEP_KIND = "collab"
