"""Jobs: a job is a stored run specification with status ``queued``; a worker process runs them.

The GUI and the CLI create jobs with :func:`submit`; ``rsc worker PROJECT`` (or
:func:`start_worker_process`, which the GUI uses so that training never runs on a Qt thread) claims
queued runs one at a time and trains them in its own process (:func:`run_worker`, the one worker loop,
which a sweep also uses for its own runs). Everything a viewer needs is in the project, read through
:mod:`trainer.runs`: a run's status, epoch, live ``progress`` while a process works on it, final
``metrics`` when done, and one ``run_epochs`` row per finished epoch.

Statuses: queued -> running -> done | failed | cancelled. ``trainer.runs.cancel`` moves a queued job
straight to cancelled and a running one to ``cancelling``; the training loop sees that within about a
second, stops, keeps its last epoch checkpoint and sets ``cancelled``. ``trainer.runs.requeue`` puts a
cancelled, failed or killed run back in the queue; a worker then continues it from that checkpoint.

A collaborative job (:func:`submit_collab`) is one queued run per model; the worker that claims one of
them claims them all (:func:`trainer.runs.claim_together`) and trains them in lockstep, and none of them
resumes alone (a stopped job is queued again whole, :func:`submit_collab_again`).

A GUI checks :func:`worker_pids` before :func:`start_worker_process`, so that one project gets one
worker (two would share the queue safely, since claims are atomic, but compete for one GPU).
"""

from .process import WORKER_LOG, start_worker_process, worker_command, worker_pids
from .queue import submit, submit_collab, submit_collab_again
from .worker import run_worker

__all__ = ["WORKER_LOG", "run_worker", "start_worker_process", "submit", "submit_collab", "submit_collab_again",
           "worker_command", "worker_pids"]
