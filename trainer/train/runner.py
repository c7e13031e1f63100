"""One function trains every run, teacher or student, and resumes any of them exactly.

A run is a row in ``runs`` holding its fully resolved :class:`TrainSpec` and its cycle set (the
cycles it trains and is scored on, shared by its group: :mod:`.cycles`). A teacher has hard-label
targets; a student has soft targets built by :class:`trainer.distill.TargetProvider` from its
teachers' stored logits on the training cycles (keyed by cycle id). Any registered model can be
either: they differ only by task (:mod:`.tasks`).

Exact resume: every random stream of an epoch is seeded from (run seed, epoch) (:mod:`.determinism`),
and after every epoch the checkpoint makes it durable (:mod:`.checkpoint`). A process killed at any
point, mid-batch or mid-write, leaves the previous complete epoch; resuming redoes the interrupted
epoch with the same random numbers and ends with the same weights, metrics and stored logits as an
uninterrupted run on the same device, whatever was imported or edited outside its cycle set meanwhile.
A checkpoint is read only once it hashes to the checksum recorded when it was written; a damaged
newest one is passed over for the one before it (the same result again), and anything else is refused.
A cancel is honoured up to the transaction that finishes the run, so ``cancelling`` always ends
``cancelled``.
"""

from __future__ import annotations

import json
import re
import secrets
import traceback
from typing import Any, Callable

import torch

from .. import runs
from ..distill import VIEW_MODES
from ..features import FeatureError
from ..project import Project
from .checkpoint import Checkpoint, LoopState, ResumePoint
from .checks import BUILD_ERRORS, check_audio, check_cycles, check_device, check_model
from .ced_task import ced_task
from .cycles import RunCycles, cycles_for, keep_cycles, run_cycles
from .data import add_text_inputs, check_teachers, load_data, teacher_targets
from .determinism import FEATURE_KD_STREAM, GLOBAL_STREAM, cpu_threads, deterministic, epoch_seed
from .hooks import CancelHook, EtaHook, Hooks, ProgressHook, RunStopped
from .loop import FitLoop
from .memory import keep_freed_memory
from .provenance import code_version, confirm_data, data_fingerprint
from .spec import TrainError, TrainSpec
from .tasks import task_for

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")[:60] or "run"


def new_run_id(spec: TrainSpec) -> str:
    """``<group>-<arch>-s<seed>-<6 hex>``: readable, and unique however often the same settings are run."""
    return f"{_slug(spec.group)}-{_slug(spec.arch)}-s{spec.seed}-{secrets.token_hex(3)}"


def create_run(project: Project, spec: TrainSpec, status: str = runs.QUEUED) -> str:
    """Store a run with its resolved specification and its cycle set; returns its id. A queued run is a
    job for a worker.

    Everything is checked before the row is written (:mod:`.checks`): a spec that cannot train leaves
    no run behind. The first run of a group fixes the group's cycle set; later ones reuse it.
    """
    spec = spec.resolved()
    if spec.kind == "student":
        check_teachers(project, spec.targets["teachers"])
    cycles = cycles_for(project, spec)
    check_cycles(project, spec, cycles)
    check_model(spec)
    if spec.targets.get("feature"):
        _check_feature_kd(project, spec)
    if status == runs.RUNNING:  # trained here and now; a queued run may go to a worker that mounts other disks
        check_device(spec)
        check_audio(project, cycles)
    run_id = new_run_id(spec)
    with project.transaction():
        # Again under the write lock: another process may have fixed the group's set, or changed cycles, meanwhile.
        fixed = cycles_for(project, spec)
        if fixed.fingerprint != cycles.fingerprint:
            raise TrainError(f"{project.path.name}: the cycles changed while run {run_id} was being checked; submit it again")
        runs.insert_run(
            project, run_id, group=spec.group, kind=spec.kind, arch=spec.arch, seed=spec.seed, spec=spec.to_dict(),
            status=status, code_version=code_version(), data_fingerprint=fixed.fingerprint,
        )
        keep_cycles(project, run_id, spec.group, fixed)
    return run_id


def run_training(
    project: Project,
    run_id: str,
    progress: Callable[[dict], Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
    restart: bool = False,
) -> dict:
    """Train a stored run from its last checkpoint (or from scratch) to the end; returns final metrics.

    ``progress(event)`` receives dicts with a ``phase``: features, resumed, batch, epoch (the per-epoch
    metrics), logits, done, and warning (a ``message``, such as a damaged checkpoint passed over).
    ``should_stop()`` is asked after every batch; when it says yes, or the run's status becomes
    ``cancelling`` in the project at any point before its final write, the run stops with status
    ``cancelled`` and :class:`RunStopped` is raised (its last epoch checkpoint stays, for :func:`resume`).
    ``restart``: ignore the checkpoints and train from the first epoch (the same result, deterministic).
    """
    run = runs.get_run(project, run_id)
    if run.finished:
        return run.metrics
    _refuse_collab(run)
    spec = TrainSpec.from_dict(run.spec)
    keep_freed_memory()
    if runs.start(project, run_id) == runs.CANCELLED:
        raise RunStopped(run_id, run.epoch, runs.CANCELLED)
    state = LoopState(epoch=run.epoch)
    reporter = ProgressHook(project, run_id, spec.epochs, progress)
    hooks = Hooks(CancelHook(project, run_id, should_stop), EtaHook(spec.epochs), reporter)
    checkpoint = Checkpoint(project, run_id)
    try:
        cycles = run_cycles(project, run, spec)
        point = ResumePoint(None) if restart else checkpoint.resume_point()
        for note in point.notes:
            reporter.warn(note)
        checkpoint.cpu_threads = _threads(spec, point)
        with deterministic(spec.deterministic, spec.device), cpu_threads(checkpoint.cpu_threads):
            return _train(project, run, spec, state, hooks, checkpoint, cycles, point)
    except (RunStopped, KeyboardInterrupt) as exc:
        runs.mark_cancelled(project, run_id, state.epoch, reporter.status)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise RunStopped(run_id, state.epoch, runs.CANCELLED) from None
    except BaseException as exc:
        runs.mark_failed(project, run_id, f"{type(exc).__name__}: {exc}\n" + traceback.format_exc(limit=8))
        raise


def resume(project: Project, run_id: str, progress=None, should_stop=None, restart: bool = False) -> dict:
    """Continue a cancelled, failed or killed run from its last checkpoint; returns the final metrics.

    ``restart``: train it again from its first epoch instead (for a run none of whose checkpoints can be
    trusted; deterministic, so the result is the one the run would have had).
    """
    run = runs.get_run(project, run_id)
    _refuse_collab(run)
    if run.finished:
        raise TrainError(f"run {run_id} is already done (score {run.metrics.get('score', float('nan')):.2f})")
    with project.transaction():  # one write: two resumes (or a resume and a worker) never both train it
        runs.requeue(project, run_id)  # refuses a run that a live process trains
        runs.claim(project, run_id)
    return run_training(project, run_id, progress=progress, should_stop=should_stop, restart=restart)


def _refuse_collab(run: runs.Run) -> None:
    """A model of a collaborative job trains only with its peers, in lockstep (trainer.train.collab)."""
    if (run.spec.get("targets") or {}).get("kind") == "collab":
        raise TrainError(f"run {run.id} is one model of a collaborative job; it trains only in lockstep with its "
                         "peers and cannot resume: train the job again with `rsc collab` in a new group")


def _threads(spec: TrainSpec, point: ResumePoint) -> int | None:
    """CPU threads to train with: the spec's, else the checkpoint's, else this process's count."""
    if spec.device != "cpu":
        return None
    if spec.cpu_threads:
        return int(spec.cpu_threads)
    return int(point.metadata.get("cpu_threads") or 0) or torch.get_num_threads()


def _train(project: Project, run: runs.Run, spec: TrainSpec, state: LoopState, hooks: Hooks,
           checkpoint: Checkpoint, cycles: RunCycles, point: ResumePoint) -> dict:
    resuming = point.record is not None
    fingerprint = data_fingerprint(project, cycles.train, cycles.test)
    checkpoint.data_fingerprint = confirm_data(project, run, fingerprint, resuming)
    device = torch.device(spec.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(f"run {run.id} asks for {spec.device} but this machine has no CUDA device")
    hooks.call("on_fit_start", len(cycles.train) + len(cycles.test))
    try:
        data = load_data(project, spec, cycles.train, cycles.test, device,
                         progress=lambda done, total: hooks.call("on_features", done, total))
    except FeatureError as exc:
        raise TrainError(f"run {run.id} cannot read the audio of its cycles: {exc} A run trains only on its own cycle "
                         "set; a new group's set leaves out recordings without audio") from None
    views = spec.targets.get("mode") in VIEW_MODES
    provider = teacher_targets(project, spec, data) if spec.kind == "student" and not views else None
    model, optimizer, scaler = _build(project, spec, device, data)
    if views:
        task = ced_task(project, spec, data, device, progress=lambda done, total: hooks.call("on_views", done, total))
    elif spec.targets.get("feature"):
        task = _feature_task(project, spec, provider, device, model, data, optimizer)
        checkpoint.task_state = task  # its projector is part of the resume state
    else:
        task = task_for(spec, provider, device)
    if resuming:
        checkpoint.restore(point, model, optimizer, scaler, state)
        hooks.call("on_resumed", state)
    else:
        checkpoint.start_fresh()
        state.epoch = 0
    loop = FitLoop(run_id=run.id, spec=spec, model=model, optimizer=optimizer, scaler=scaler,
                   task=task, data=data, device=device, hooks=hooks,
                   checkpoint=checkpoint, state=state)
    loop.fit()
    return finish_run(project, run.id, loop, spec)


def finish_run(project: Project, run_id: str, loop: FitLoop, spec: TrainSpec) -> dict:
    """The selected model's logits on every cycle and its file, stored with the final metrics in one write."""
    state = loop.state
    loop.hooks.call("on_train_end", state)
    metrics, logits, selected = loop.final_outputs()
    stored = loop.checkpoint.save_model(loop.model, spec, selected)
    with project.transaction():  # a done run always has its logits
        if runs.status_of(project, run_id) != runs.RUNNING:  # cancelled while its final outputs were made
            raise RunStopped(run_id, state.epoch, runs.CANCELLED)
        runs.store_logits(project, run_id, loop.data.cycle_ids, logits)
        runs.finish(project, run_id, metrics=metrics, checkpoint=stored, epoch=state.epoch)
    loop.checkpoint.remove_resume_files()
    loop.hooks.call("on_fit_end", metrics)
    return metrics


def _build(project: Project, spec: TrainSpec, device: torch.device, data) -> tuple:
    """The model (initial weights from the run's seed), its optimizer and its AMP scaler."""
    from ..models import create_model

    torch.manual_seed(epoch_seed(spec.seed, 0, GLOBAL_STREAM))
    # A resumed run overwrites the weights with its checkpoint, but still builds from the same
    # pretrained source: BTS takes its tokenizer from there, and a built-in one would misread prompts.
    try:
        model = create_model(spec.arch, num_classes=4, pretrained=spec.pretrained, **spec.model_args).to(device)
    except BUILD_ERRORS as exc:  # the weights file changed or went since the run was checked
        raise TrainError(f"run {spec.group} seed {spec.seed}: {spec.arch} cannot be built: {exc}") from None
    if getattr(model, "feature_set", spec.feature_set) != spec.feature_set:
        raise TrainError(f"{spec.arch} reads {model.feature_set} features, the run says {spec.feature_set}")
    add_text_inputs(project, model, data)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=bool(spec.amp) and device.type == "cuda")
    return model, optimizer, scaler


def _feature_task(project: Project, spec: TrainSpec, provider, device: torch.device, model, data, optimizer):
    """The joint feature + output KD task (seed paper 004), hooked to ``model``; its projector trains as an
    extra parameter group (the loop sets every group's learning rate)."""
    from .feature_kd import FeatureKDTask

    feature = spec.targets["feature"]
    teacher = load_run_model(project, feature["teacher"], device=str(device))
    task = FeatureKDTask(teacher, feature["teacher_layer"], feature["student_layer"], provider, spec.targets,
                         feature["weight"], device, seed=epoch_seed(spec.seed, 0, FEATURE_KD_STREAM),
                         example=data.x_all[:1].float())
    task.attach(model)
    optimizer.add_param_group({"params": task.parameters()})
    return task


def _check_feature_kd(project: Project, spec: TrainSpec) -> None:
    """The feature teacher's model loads, reads the student's features, and both layers exist."""
    from ..models import create_model
    from .feature_kd import check_pairing

    feature = spec.targets["feature"]
    teacher = load_run_model(project, feature["teacher"])
    with torch.random.fork_rng(devices=[]):  # the caller's random stream is left as it was
        student = create_model(spec.arch, num_classes=4, pretrained=None, **spec.model_args)
    check_pairing(teacher, student, feature)


def load_run_model(project: Project, run_id: str, device: str = "cpu") -> torch.nn.Module:
    """The final (selected) model of a finished run, in eval mode; its file must hash to its record.

    The file is looked for in the run's folder of this project, so a project renamed or moved with its
    artifacts folder still finds it (``runs.checkpoint`` keeps the path as it was written).
    """
    from ..models import create_model

    run = runs.get_run(project, run_id)
    checkpoint = Checkpoint(project, run_id)
    if not run.finished or not run.checkpoint:
        raise TrainError(f"run {run_id} has no final model (status {run.status})")
    tensors, meta = checkpoint.load_model_file()
    path = checkpoint.model_path
    try:
        if meta.get("model_spec"):  # what rebuilds the same architecture and tokenizer
            model = create_model(**json.loads(meta["model_spec"]), pretrained=None)
        else:
            spec = TrainSpec.from_dict(run.spec)
            model = create_model(spec.arch, num_classes=4, pretrained=None, **spec.model_args)
        model.load_state_dict(tensors)
    except (*BUILD_ERRORS, KeyError) as exc:
        raise TrainError(f"{path}: does not rebuild the model of run {run_id} ({type(exc).__name__}: {exc})") from None
    return model.to(device).eval()
