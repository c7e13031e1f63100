"""Collaborative distillation across input representations (seed paper 002): k models in one lockstep job.

Each model reads its own feature set of the same cycles (log-mel ``cnn``, linear ``stft``, ``mfcc``)
and learns from the labels and from the others' current predictions on the same batch:

    loss_i = CE(labels, z_i) + w * T^2 * KL(mean_{j != i} softmax(z_j / T) (detached) || softmax(z_i / T))

Every model is its own run (its row with its full spec, its run_epochs, its logits, its checkpoint), so
any one of them is used alone afterwards like any other run. Its targets record the job:
``{"kind": "collab", "peers": [...], "peer_weight": w, "temperature": T}``. Each run gets the group
``<group>-<feature set>``, so a report lists each representation on its own row, its seeds together.

Lockstep: one batch order for all (from the shared seed's order stream of the epoch, as the fit loop
draws it), one optimiser step of every model per batch. A lockstep job is not resumable: a stopped or
killed job's runs are marked cancelled or failed and refused by :func:`train_collab` (train them again).
"""

from __future__ import annotations

import dataclasses
import math
import traceback
from typing import Any, Callable

import torch
import torch.nn.functional as F

from .. import runs
from ..features import FeatureError, spec_augment
from ..project import Project
from .checkpoint import Checkpoint, LoopState
from .checks import check_audio, check_cycles, check_device, check_model
from .cycles import cycles_for, keep_cycles, run_cycles
from .data import load_data, text_rows
from .determinism import cpu_threads, deterministic
from .hooks import CancelHook, EtaHook, Hooks, ProgressHook, RunStopped
from .loop import FitLoop
from .memory import keep_freed_memory
from .provenance import code_version, confirm_data, data_fingerprint
from .runner import _build, finish_run, new_run_id
from .spec import TrainError, TrainSpec
from .tasks import HardLabelTask

COLLAB = runs.LOCKSTEP_KIND
# Settings that decide the shared batch order and the shared scoring: one value for the whole job.
LOCKSTEP = ("seed", "epochs", "batch_size", "select", "val_fraction", "val_seed", "balance", "device",
            "deterministic", "spec_augment", "cpu_threads")


class CollabStopped(RunStopped):
    """A collaborative job stopped at the caller's request; its runs are cancelled and cannot resume."""

    def __init__(self, run_ids: list[str], epoch: int):
        super().__init__(run_ids[0], epoch, runs.CANCELLED)
        self.run_ids = list(run_ids)
        self.args = (f"collaborative job {', '.join(run_ids)} stopped after epoch {epoch} (cancelled); a lockstep job "
                     "cannot resume: train it again with `rsc collab` in a new group",)


def collab_losses(logits: list[torch.Tensor], labels: torch.Tensor, peer_weight: float, temperature: float,
                  weights: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Each model's loss: CE with the labels + w * T^2 * KL(mean of the peers' detached softmax at T || its own).

    ``weights`` (one per class) weight each cycle by its label's class weight (``balance="loss"``).
    """
    if len(logits) < 2:
        raise ValueError("collaborative distillation needs at least two models")
    t = float(temperature)
    probs = [F.softmax(z.detach().float() / t, dim=-1) for z in logits]
    total = torch.stack(probs).sum(dim=0)
    w = None
    if weights is not None:
        w = weights.to(labels.device)[labels]
        w = w / w.sum().clamp(min=torch.finfo(w.dtype).tiny)
    losses = []
    for z, own in zip(logits, probs):
        peers = (total - own) / (len(logits) - 1)
        log_p = F.log_softmax(z.float() / t, dim=-1)
        kl = (torch.xlogy(peers, peers) - peers * log_p).sum(dim=-1) * t**2
        per_cycle = F.cross_entropy(z.float(), labels, reduction="none") + peer_weight * kl
        losses.append((w * per_cycle).sum() if w is not None else per_cycle.mean())
    return losses


def check_weights(peer_weight: float, temperature: float) -> None:
    """The loss settings of a collaborative job, refused with the reason when they make no loss."""
    if not peer_weight >= 0 or not math.isfinite(peer_weight):
        raise TrainError(f"peer weight must be a finite number >= 0, got {peer_weight}")
    if not temperature > 0 or not math.isfinite(temperature):
        raise TrainError(f"temperature must be positive, got {temperature}")


def create_collab_runs(project: Project, specs: list[TrainSpec], peer_weight: float, temperature: float,
                       group: str, status: str = runs.RUNNING) -> list[str]:
    """Store one run per spec (one representation each) as one collaborative job; returns their ids.

    A spec names its representation by ``feature_set`` (or ``model_args["feature_set"]``); the model is
    built to read it. The specs must agree on every :data:`LOCKSTEP` setting. Each run's group is
    ``<group>-<feature set>``. Everything is checked before any row is written. The runs are stored as
    running, for :func:`train_collab` in this process, or as ``queued``: a worker that claims one of them
    claims the whole job (:func:`trainer.runs.claim_together`) and trains it with :func:`train_collab`.
    """
    if status not in (runs.RUNNING, runs.QUEUED):
        raise TrainError(f"a collaborative job is stored as running or queued, not {status}")
    if len(specs) < 2:
        raise TrainError("collaborative distillation needs at least two representations")
    check_weights(peer_weight, temperature)
    resolved = []
    for spec in specs:
        args = dict(spec.model_args)
        feature_set = args.setdefault("feature_set", spec.feature_set or "cnn")
        if spec.feature_set not in (None, feature_set):
            raise TrainError(f"{spec.arch}: feature_set {spec.feature_set!r} and model_args {feature_set!r} differ")
        spec = dataclasses.replace(spec, feature_set=feature_set, model_args=args, targets={"kind": "hard"},
                                   group=f"{group}-{feature_set}").resolved()
        resolved.append(spec)
    sets = [s.feature_set for s in resolved]
    if len(set(sets)) != len(sets):
        raise TrainError(f"each model of a collaborative job reads its own representation; got {', '.join(sets)}")
    for key in LOCKSTEP:
        values = {repr(getattr(s, key)) for s in resolved}
        if len(values) > 1:
            raise TrainError(f"the models of a collaborative job train in lockstep and must share {key}; got {sorted(values)}")
    cycles = [cycles_for(project, s) for s in resolved]
    for spec, found in zip(resolved, cycles):
        check_cycles(project, spec, found)
        check_model(spec)
        check_device(spec)
        check_audio(project, found)
    if len({c.fingerprint for c in cycles}) > 1:
        raise TrainError(f"the groups {', '.join(s.group for s in resolved)} hold different cycle sets; "
                         "a collaborative job needs the same cycles for every model (use a new --group)")
    ids = [new_run_id(s) for s in resolved]
    with project.transaction():
        for run_id, spec, found in zip(ids, resolved, cycles):
            fixed = cycles_for(project, spec)
            if fixed.fingerprint != found.fingerprint:
                raise TrainError(f"{project.path.name}: the cycles changed while the collaborative job was being checked")
            stored = spec.to_dict()
            stored["targets"] = {"kind": COLLAB, "peers": [p for p in ids if p != run_id],
                                 "peer_weight": float(peer_weight), "temperature": float(temperature),
                                 "representation": spec.feature_set, "job_group": group}
            runs.insert_run(project, run_id, group=spec.group, kind=COLLAB, arch=spec.arch, seed=spec.seed,
                            spec=stored, status=status, code_version=code_version(),
                            data_fingerprint=fixed.fingerprint)
            keep_cycles(project, run_id, spec.group, fixed)
    return ids


@dataclasses.dataclass
class _Member:
    """One model of the job: its run, spec, loop (scoring, selection, outputs), hooks and reporter."""

    run: runs.Run
    spec: TrainSpec
    loop: FitLoop
    hooks: Hooks
    reporter: ProgressHook


def _stored_spec(run: runs.Run) -> tuple[TrainSpec, dict]:
    """The run's spec for training (hard targets; the job's settings aside) and its collab targets."""
    targets = dict(run.spec.get("targets") or {})
    if targets.get("kind") != COLLAB:
        raise TrainError(f"run {run.id} is not part of a collaborative job (its targets are {targets.get('kind')!r})")
    return TrainSpec.from_dict(dict(run.spec, targets={"kind": "hard"})), targets


def train_collab(project: Project, run_ids: list[str], progress: Callable[[dict], Any] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> dict[str, dict]:
    """Train the runs of one collaborative job together to the end; returns each run's final metrics."""
    stored = [runs.get_run(project, run_id) for run_id in run_ids]
    specs, targets = zip(*(_stored_spec(run) for run in stored))
    keep_freed_memory()
    for run, target in zip(stored, targets):
        if sorted(target["peers"]) != sorted(r for r in run_ids if r != run.id):
            raise TrainError(f"run {run.id} was trained with peers {', '.join(target['peers'])}, not with these runs")
        if run.finished or run.epoch or run.status != runs.RUNNING:
            raise TrainError(
                f"run {run.id} is {run.status} after epoch {run.epoch}: a collaborative job trains its models in "
                "lockstep from the first epoch and cannot resume; train the representations again in a new group "
                "(`rsc collab ... --group NEW`)")
    members: list[_Member] = []
    try:
        threads = (specs[0].cpu_threads or torch.get_num_threads()) if specs[0].device == "cpu" else None
        with deterministic(specs[0].deterministic, specs[0].device), cpu_threads(threads):
            for run, spec in zip(stored, specs):
                members.append(_member(project, run, spec, threads, progress, should_stop))
            _fit(members, targets[0]["peer_weight"], targets[0]["temperature"])
            return {m.run.id: _finish(project, m) for m in members}
    except (RunStopped, KeyboardInterrupt) as exc:
        started = {m.run.id: m for m in members}
        for run_id in run_ids:  # those not started yet too: none is left running
            if runs.status_of(project, run_id) not in runs.FINISHED:
                m = started.get(run_id)
                runs.mark_cancelled(project, run_id, m.loop.state.epoch if m else 0, m.reporter.status if m else None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise CollabStopped(run_ids, members[0].loop.state.epoch if members else 0) from None
    except BaseException as exc:
        for run_id in run_ids:
            if runs.status_of(project, run_id) not in runs.FINISHED:
                runs.mark_failed(project, run_id, f"{type(exc).__name__}: {exc}\n" + traceback.format_exc(limit=8))
        raise


def _member(project, run, spec, threads, progress, should_stop) -> _Member:
    if runs.start(project, run.id) == runs.CANCELLED:
        raise RunStopped(run.id, 0, runs.CANCELLED)
    reporter = ProgressHook(project, run.id, spec.epochs, progress)
    hooks = Hooks(CancelHook(project, run.id, should_stop), EtaHook(spec.epochs), reporter)
    checkpoint = Checkpoint(project, run.id)
    checkpoint.cpu_threads = threads
    cycles = run_cycles(project, run, spec)
    checkpoint.data_fingerprint = confirm_data(project, run, data_fingerprint(project, cycles.train, cycles.test), False)
    device = torch.device(spec.device)
    hooks.call("on_fit_start", len(cycles.train) + len(cycles.test))
    try:
        data = load_data(project, spec, cycles.train, cycles.test, device,
                         progress=lambda done, total: hooks.call("on_features", done, total))
    except FeatureError as exc:
        raise TrainError(f"run {run.id} cannot read the audio of its cycles: {exc}") from None
    model, optimizer, scaler = _build(project, spec, device, data)
    checkpoint.start_fresh()
    loop = FitLoop(run_id=run.id, spec=spec, model=model, optimizer=optimizer, scaler=scaler, task=HardLabelTask(),
                   data=data, device=device, hooks=hooks, checkpoint=checkpoint, state=LoopState(epoch=0))
    return _Member(run, spec, loop, hooks, reporter)


def _fit(members: list[_Member], peer_weight: float, temperature: float) -> None:
    first = members[0]
    spec, n = first.spec, len(first.loop.data.fit_pos)
    if any(not torch.equal(m.loop.y_fit.cpu(), first.loop.y_fit.cpu()) for m in members):
        raise TrainError("the models of a collaborative job fit different cycles; train them again in a new group")
    while first.loop.state.epoch < spec.epochs:
        for m in members:
            m.hooks.call("on_epoch_start", m.loop.state)
        # Every member seeds the same streams from the same seed and labels, so their orders are one order.
        perm = [m.loop.start_epoch() for m in members][0]
        weights = first.loop.loss_weights
        totals = [0.0] * len(members)
        seen, batches = 0, math.ceil(n / spec.batch_size)
        for b in range(batches):
            local = perm[b * spec.batch_size : (b + 1) * spec.batch_size]
            if len(local) < 2:
                continue  # batch norm needs two samples, as in the fit loop
            losses = _step(members, local, peer_weight, temperature, weights)
            for i, loss in enumerate(losses):
                totals[i] += float(loss) * len(local)
            seen += len(local)
            for m in members:
                m.hooks.call("on_batch_end", m.loop.state, b + 1, batches)
        for m, total in zip(members, totals):
            _end_epoch(m, total / max(seen, 1))


def _step(members: list[_Member], local: torch.Tensor, peer_weight: float, temperature: float,
          weights: torch.Tensor | None) -> list[torch.Tensor]:
    """One optimiser step of every model on the same cycles, each on its own features of them."""
    logits = []
    for m in members:
        loop, data = m.loop, m.loop.data
        rows = data.fit_pos[local]
        x = data.x_all[rows.to(loop.device)].float()
        if m.spec.spec_augment:
            x = spec_augment(x, generator=loop._augment_gen)
        with loop.autocast():
            logits.append(loop.model(x, text=text_rows(data.text_all, rows, loop.device)).float())
    labels = members[0].loop.y_fit[local.to(members[0].loop.device)]
    losses = collab_losses(logits, labels, peer_weight, temperature, weights)
    for m, loss in zip(members, losses):
        m.loop.optimizer.zero_grad(set_to_none=True)
        m.loop.scaler.scale(loss).backward()  # the graphs are disjoint: the peers' logits are detached
        m.loop.scaler.step(m.loop.optimizer)
        m.loop.scaler.update()
    return [loss.detach() for loss in losses]


def _end_epoch(m: _Member, loss: float) -> None:
    """Score, select and make the epoch durable, as the fit loop does for a run alone."""
    loop, state = m.loop, m.loop.state
    if not math.isfinite(loss):
        raise TrainError(f"run {m.run.id}: the loss became {loss} in epoch {state.epoch + 1} (lower the learning rate)")
    loop.end_epoch(loss)


def _finish(project: Project, m: _Member) -> dict:
    """The selected model's logits and file, stored as the runner stores a run's."""
    return finish_run(project, m.run.id, m.loop, TrainSpec.from_dict(m.run.spec))
