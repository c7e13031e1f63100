"""One function trains every run, teacher or student, and resumes any of them exactly.

A run is a row in ``runs`` holding its fully resolved :class:`TrainSpec`. A teacher has hard-label
targets; a student has soft targets built by :class:`trainer.distill.TargetProvider` from its
teachers' stored logits on the training cycles (keyed by cycle id). Any registered model can be
either: they differ only by task (:mod:`.tasks`).

Exact resume: every random stream of an epoch is seeded from (run seed, epoch) (:mod:`.determinism`),
and after every epoch the checkpoint makes it durable (:mod:`.checkpoint`). A process killed at any
point, mid-batch or mid-write, leaves the previous complete epoch; resuming redoes the interrupted
epoch with the same random numbers and ends with the same weights, metrics and stored logits as an
uninterrupted run on the same device.
"""

from __future__ import annotations

import json
import re
import secrets
import traceback
from typing import Any, Callable

import torch

from .. import runs
from ..project import Project
from .checkpoint import Checkpoint, LoopState, load_weights
from .data import add_text_inputs, check_teachers, load_data, teacher_targets, training_cycles
from .determinism import GLOBAL_STREAM, cpu_threads, deterministic, epoch_seed
from .hooks import CancelHook, EtaHook, Hooks, ProgressHook, RunStopped
from .loop import FitLoop
from .provenance import code_version, confirm_data, data_fingerprint
from .spec import TrainError, TrainSpec
from .tasks import task_for


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")[:60] or "run"


def create_run(project: Project, spec: TrainSpec, status: str = runs.QUEUED) -> str:
    """Store a run with its resolved specification; returns its id. A queued run is a job for a worker.

    Everything is checked before the row is written: a spec that cannot train leaves no run behind.
    """
    spec = spec.resolved()
    if spec.kind == "student":
        check_teachers(project, spec.targets["teachers"])
    train_rows, test_rows = training_cycles(project)
    if not train_rows:
        raise TrainError(f"{project.path.name}: no training cycles with audio (import data first)")
    run_id = f"{_slug(spec.group)}-{_slug(spec.arch)}-s{spec.seed}-{secrets.token_hex(3)}"
    runs.insert_run(
        project, run_id, group=spec.group, kind=spec.kind, arch=spec.arch, seed=spec.seed, spec=spec.to_dict(),
        status=status, code_version=code_version(), data_fingerprint=data_fingerprint(project, train_rows, test_rows),
    )
    return run_id


def run_training(
    project: Project,
    run_id: str,
    progress: Callable[[dict], Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Train a stored run from its last checkpoint (or from scratch) to the end; returns final metrics.

    ``progress(event)`` receives dicts with a ``phase``: features, resumed, batch, epoch (the per-epoch
    metrics), logits, done. ``should_stop()`` is asked after every batch; when it says yes, or the
    run's status becomes ``cancelling`` in the project, the run stops with status ``cancelled`` and
    :class:`RunStopped` is raised (its last epoch checkpoint stays, for :func:`resume`).
    """
    run = runs.get_run(project, run_id)
    if run.finished:
        return run.metrics
    spec = TrainSpec.from_dict(run.spec)
    if runs.start(project, run_id) == runs.CANCELLED:
        raise RunStopped(run_id, run.epoch, runs.CANCELLED)
    state = LoopState(epoch=run.epoch)
    reporter = ProgressHook(project, run_id, spec.epochs, progress)
    hooks = Hooks(CancelHook(project, run_id, should_stop), EtaHook(spec.epochs), reporter)
    checkpoint = Checkpoint(project, run_id)
    try:
        checkpoint.cpu_threads = _threads(spec, checkpoint)
        with deterministic(spec.deterministic, spec.device), cpu_threads(checkpoint.cpu_threads):
            return _train(project, run, spec, state, hooks, checkpoint)
    except (RunStopped, KeyboardInterrupt) as exc:
        runs.mark_cancelled(project, run_id, state.epoch, reporter.status)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise RunStopped(run_id, state.epoch, runs.CANCELLED) from None
    except BaseException as exc:
        runs.mark_failed(project, run_id, f"{type(exc).__name__}: {exc}\n" + traceback.format_exc(limit=8))
        raise


def resume(project: Project, run_id: str, progress=None, should_stop=None) -> dict:
    """Continue a cancelled, failed or killed run from its last checkpoint; returns the final metrics."""
    run = runs.get_run(project, run_id)
    if run.finished:
        raise TrainError(f"run {run_id} is already done (score {run.metrics.get('score', float('nan')):.2f})")
    runs.check_not_owned(run)
    return run_training(project, run_id, progress=progress, should_stop=should_stop)


def _threads(spec: TrainSpec, checkpoint: Checkpoint) -> int | None:
    """CPU threads to train with: the spec's, else the checkpoint's, else this process's count."""
    if spec.device != "cpu":
        return None
    if spec.cpu_threads:
        return int(spec.cpu_threads)
    return checkpoint.stored_cpu_threads() or torch.get_num_threads()


def _train(project: Project, run: runs.Run, spec: TrainSpec, state: LoopState, hooks: Hooks,
           checkpoint: Checkpoint) -> dict:
    train_rows, test_rows = training_cycles(project)
    resuming = checkpoint.exists()
    checkpoint.data_fingerprint = confirm_data(project, run, data_fingerprint(project, train_rows, test_rows), resuming)
    device = torch.device(spec.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(f"run {run.id} asks for {spec.device} but this machine has no CUDA device")
    hooks.call("on_fit_start", len(train_rows) + len(test_rows))
    data = load_data(project, spec, train_rows, test_rows, device,
                     progress=lambda done, total: hooks.call("on_features", done, total))
    provider = teacher_targets(project, spec, data) if spec.kind == "student" else None
    model, optimizer, scaler = _build(project, spec, device, data)
    if resuming:
        checkpoint.restore(model, optimizer, scaler, state)
        hooks.call("on_resumed", state)
    else:
        checkpoint.start_fresh()
        state.epoch = 0
    loop = FitLoop(run_id=run.id, spec=spec, model=model, optimizer=optimizer, scaler=scaler,
                   task=task_for(spec, provider, device), data=data, device=device, hooks=hooks,
                   checkpoint=checkpoint, state=state)
    loop.fit()
    metrics, logits, selected = loop.final_outputs()
    stored = checkpoint.save_model(model, spec, selected)
    with project.transaction():  # a done run always has its logits
        runs.store_logits(project, run.id, data.cycle_ids, logits)
        runs.finish(project, run.id, metrics=metrics, checkpoint=stored, epoch=state.epoch)
    checkpoint.remove_resume_files()
    hooks.call("on_fit_end", metrics)
    return metrics


def _build(project: Project, spec: TrainSpec, device: torch.device, data) -> tuple:
    """The model (initial weights from the run's seed), its optimizer and its AMP scaler."""
    from ..models import create_model

    torch.manual_seed(epoch_seed(spec.seed, 0, GLOBAL_STREAM))
    # A resumed run overwrites the weights with its checkpoint, but still builds from the same
    # pretrained source: BTS takes its tokenizer from there, and a built-in one would misread prompts.
    model = create_model(spec.arch, num_classes=4, pretrained=spec.pretrained, **spec.model_args).to(device)
    if getattr(model, "feature_set", spec.feature_set) != spec.feature_set:
        raise TrainError(f"{spec.arch} reads {model.feature_set} features, the run says {spec.feature_set}")
    add_text_inputs(project, model, data)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=bool(spec.amp) and device.type == "cuda")
    return model, optimizer, scaler


def load_run_model(project: Project, run_id: str, device: str = "cpu") -> torch.nn.Module:
    """The final (selected) model of a finished run, in eval mode."""
    from ..models import create_model

    run = runs.get_run(project, run_id)
    path = project.resolve_path(run.checkpoint)
    if not run.finished or path is None or not path.exists():
        raise TrainError(f"run {run_id} has no final model (status {run.status})")
    tensors, meta = load_weights(path)
    if meta.get("model_spec"):  # what rebuilds the same architecture and tokenizer
        model = create_model(**json.loads(meta["model_spec"]), pretrained=None)
    else:
        spec = TrainSpec.from_dict(run.spec)
        model = create_model(spec.arch, num_classes=4, pretrained=None, **spec.model_args)
    model.load_state_dict(tensors)
    return model.to(device).eval()
