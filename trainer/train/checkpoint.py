"""Checkpoints: the one owner of a run's resume state, and the safetensors files of its models.

A run's folder (``<project>.d/runs/<run id>/``) holds ``state-NNNN.safetensors`` for its last two
epochs (weights, optimizer and AMP scaler state, epoch, best epoch and score: everything the loop needs
to continue), while it trains with selection ``val`` or ``test`` also ``best.safetensors`` (the best
weights so far), and once done ``model.safetensors`` (the selected model, which rebuilds itself from
its metadata).

Every file is written to a temp file, read back and compared with the sha256 of the bytes meant for
it, and only then renamed into place and its sha256 and size recorded in the project
(:mod:`trainer.runs.checkpoints`). A file is read only after it hashes to its record: a truncated,
scrambled or swapped file is never trained on. The state of the epoch before the newest is kept until
the newest is verified, and a resume falls back to it when the newest is damaged (or, after the first
epoch, to a fresh start): the epoch after it is redone with the same random numbers, so the result is
the same. Anything older than that is refused by name rather than guessed at.

The epoch history lives in ``run_epochs`` only. After every epoch the best weights are written
first, then the epoch's row, then the state: a process killed at any point leaves the previous
complete state, and the rows of epochs after it are dropped on resume.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import runs
from ..files import atomic_path, remove_stale_temps
from ..project import Project, file_sha256
from .spec import TrainError, TrainSpec

CHECKPOINT_FORMAT = 1
STATE_PREFIX = "state-"
STATE_GLOB = f"{STATE_PREFIX}*.safetensors"
# Written by versions that recorded no checksum: never trusted, the run starts again (same result).
UNRECORDED_STATE = "state.safetensors"
BEST_FILE, MODEL_FILE = "best.safetensors", "model.safetensors"


def checkpoint_dir(project: Project, run_id: str) -> Path:
    return runs.run_folder(project, run_id)


def state_file(epoch: int) -> str:
    return f"{STATE_PREFIX}{epoch:04d}.safetensors"


def model_weights(model: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    # Copies: safetensors refuses tensors sharing storage (tied weights) and needs CPU memory.
    return {prefix + k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


@dataclass(frozen=True)
class Written:
    sha256: str
    size_bytes: int


def save_weights(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]) -> Written:
    """Write a safetensors file atomically and verified: the file read back must hash to the bytes meant
    for it before it replaces the old one (a full or failing disk leaves the old file, and an error)."""
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    expected = hashlib.sha256(data).hexdigest()
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
            if file_sha256(tmp) != expected:
                raise TrainError(f"{path}: the file read back differs from what was written (a failing disk?); "
                                 "the previous file is kept")
    except OSError as exc:  # a full disk fails the write itself, with no file name on the error
        raise TrainError(f"{path}: cannot be written ({exc.strerror or exc}); the previous file is kept") from None
    return Written(expected, len(data))


def load_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights and metadata of a model checkpoint (safetensors; never unpickled).

    A file that is not a readable safetensors file raises :class:`TrainError` naming it.
    """
    from safetensors import SafetensorError, safe_open

    tensors = {}
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            for key in handle.keys():
                tensors[key] = handle.get_tensor(key)
    except (SafetensorError, ValueError, OSError) as exc:
        raise TrainError(f"{path}: not a readable checkpoint ({exc})") from None
    return tensors, metadata


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors, plain = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
            else:
                plain.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "plain": plain}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, entries in meta["plain"].items():
        state.setdefault(int(index), {}).update(entries)
    return {"state": state, "param_groups": meta["param_groups"]}


@dataclass
class LoopState:
    """Where the loop stands at an epoch boundary (with the weights and the optimizer, all it needs)."""

    epoch: int = 0
    best_epoch: int | None = None
    best_score: float | None = None
    history: list[dict] = field(default_factory=list)  # the rows of run_epochs, oldest first


@dataclass
class ResumePoint:
    """The verified state a run continues from (None: a fresh start), and what was passed over and why."""

    record: runs.CheckpointRecord | None
    metadata: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    passed_over: list[str] = field(default_factory=list)  # damaged states, cleared before training goes on


def _clear(path: Path) -> None:
    """Remove a checkpoint file (or link); a folder someone put in its place is set aside, never deleted."""
    if path.is_dir() and not path.is_symlink():
        os.replace(path, path.with_name(path.name + ".damaged"))
    else:
        path.unlink(missing_ok=True)


class Checkpoint:
    """The files of one run, and the order in which an epoch is made durable."""

    def __init__(self, project: Project, run_id: str):
        self.project, self.run_id = project, run_id
        self.dir = checkpoint_dir(project, run_id)
        self.best_path = self.dir / BEST_FILE
        self.model_path = self.dir / MODEL_FILE
        # Stamped into every state file: the data it was trained on, the CPU threads a resume must use.
        self.data_fingerprint = ""
        self.cpu_threads: int | None = None
        # A task with trained state of its own (the feature-KD projector), saved and restored with the model.
        self.task_state = None

    def _write(self, file: str, epoch: int, tensors: dict, metadata: dict) -> None:
        written = save_weights(tensors, self.dir / file, metadata)
        runs.record_checkpoint(self.project, self.run_id, file, epoch, written.sha256, written.size_bytes)

    def _trusted(self, file: str, epoch: int | None = None) -> Path:
        """The path of a recorded file that hashes to its record (of ``epoch``, when given); else TrainError."""
        path = self.dir / file
        record = runs.checkpoint_records(self.project, self.run_id).get(file)
        if record is None or (epoch is not None and record.epoch != epoch):
            held = "no record" if record is None else f"a record of epoch {record.epoch}"
            raise TrainError(f"{path}: the project has {held} of it, expected epoch {epoch}; "
                             f"{self._restart_hint()}")
        fault = record.fault(self.dir)
        if fault:
            raise TrainError(f"{path}: {fault}; {self._restart_hint()}")
        return path

    def _restart_hint(self) -> str:
        return (f"train run {self.run_id} again from its first epoch, which gives the same result: "
                f"`rsc resume --restart {self.project.path} {self.run_id}`")

    # -- resuming ---------------------------------------------------------------------------------
    def resume_point(self) -> ResumePoint:
        """The newest recorded state that verifies, at most one epoch back (the epoch before the first is a
        fresh start); TrainError naming every file when none of those can be trusted."""
        records = runs.checkpoint_records(self.project, self.run_id)
        states = sorted((r for r in records.values() if r.file.startswith(STATE_PREFIX)),
                        key=lambda r: r.epoch, reverse=True)
        if not states:
            unrecorded = self.dir / UNRECORDED_STATE
            notes = [f"{unrecorded}: written without a recorded checksum, so it is not trusted; run {self.run_id} "
                     "trains again from its first epoch (the result is the same)"] if unrecorded.exists() else []
            return ResumePoint(None, notes=notes)
        newest, faults = states[0], []
        for record in (r for r in states if r.epoch >= newest.epoch - 1):
            fault = record.fault(self.dir)
            if fault is None:
                notes = [f"{self.dir / r.file}: {why}; run {self.run_id} continues from epoch {record.epoch} "
                         f"({record.file}) and redoes the epochs after it (the result is the same)" for r, why in faults]
                return ResumePoint(record, self._metadata(record), notes, [r.file for r, _ in faults])
            faults.append((record, fault))
        named = "; ".join(f"{self.dir / r.file} ({why})" for r, why in faults)
        if newest.epoch == 1:
            return ResumePoint(None, notes=[f"{named}; run {self.run_id} trains again from its first epoch "
                                            "(the result is the same)"], passed_over=[r.file for r, _ in faults])
        raise TrainError(f"run {self.run_id}: none of its last checkpoints can be trusted: {named}. "
                         f"Nothing was trained on them; {self._restart_hint()}")

    def _metadata(self, record: runs.CheckpointRecord) -> dict:
        from safetensors import safe_open

        with safe_open(str(self.dir / record.file), framework="pt") as handle:
            meta = dict(handle.metadata() or {})
        if meta.get("run_id") != self.run_id or int(meta.get("format", 0)) != CHECKPOINT_FORMAT \
                or int(meta.get("epoch", -1)) != record.epoch:
            raise TrainError(f"{self.dir / record.file}: not the checkpoint of epoch {record.epoch} of run {self.run_id}")
        best_epoch = json.loads(meta["best_epoch"])
        if best_epoch is not None:
            best = runs.checkpoint_records(self.project, self.run_id).get(BEST_FILE)
            # A best file newer than the state is rewritten when its epoch is redone; an older one must hold.
            if best is None or best.epoch <= record.epoch:
                self._trusted(BEST_FILE, best_epoch)
        return meta

    def restore(self, point: ResumePoint, model, optimizer, scaler, state: LoopState) -> None:
        """Load the state of ``point`` into the model, optimizer, scaler and ``state`` (history from run_epochs)."""
        remove_stale_temps(self.dir)
        for name in point.passed_over:
            _clear(self.dir / name)
        runs.forget_checkpoints(self.project, self.run_id, point.passed_over)
        path = self._trusted(point.record.file, point.record.epoch)
        tensors, meta = load_weights(path)
        try:
            model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
            optimizer.load_state_dict(_optimizer_state(tensors, json.loads(meta["optimizer"])))
            if self.task_state is not None:
                self.task_state.load_state_dict({k[len("task."):]: v for k, v in tensors.items() if k.startswith("task.")})
        except (RuntimeError, ValueError, KeyError) as exc:
            raise TrainError(f"{path}: does not fit the model of run {self.run_id} ({exc})") from None
        scaler_state = json.loads(meta.get("scaler") or "{}")
        if scaler_state and scaler.is_enabled():
            scaler.load_state_dict(scaler_state)
        epoch = point.record.epoch
        # Rows past the state are from an epoch killed between its two writes, or passed over: redone.
        runs.truncate_epochs(self.project, self.run_id, epoch)
        history = [{k: v for k, v in row.items() if k != "at"} for row in runs.run_epochs(self.project, self.run_id)]
        if [row["epoch"] for row in history] != list(range(1, epoch + 1)):
            raise TrainError(
                f"run {self.run_id}: the project holds {len(history)} of the {epoch} epochs in {path}; "
                f"the checkpoint cannot be continued: {self._restart_hint()}"
            )
        state.epoch, state.history = epoch, history
        state.best_epoch, state.best_score = json.loads(meta["best_epoch"]), json.loads(meta["best_score"])

    def start_fresh(self) -> None:
        """A fresh start (or a restart): nothing of an earlier attempt stays, files, records or results."""
        self.dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.dir)
        runs.forget_checkpoints(self.project, self.run_id)
        for stale in (self.best_path, self.model_path, self.dir / UNRECORDED_STATE, *self.dir.glob(STATE_GLOB)):
            _clear(stale)
        runs.reset_results(self.project, self.run_id)

    # -- saving -----------------------------------------------------------------------------------
    def save_epoch(self, model, optimizer, scaler, state: LoopState, entry: dict, is_best: bool) -> None:
        """Make the finished epoch ``state.epoch`` durable: best weights, its run_epochs row, then the state."""
        if is_best:
            self._write(BEST_FILE, state.epoch, model_weights(model), {"run_id": self.run_id, "epoch": str(state.epoch)})
        runs.record_epoch(self.project, self.run_id, state.epoch, entry)
        tensors = model_weights(model, "model.")
        opt_tensors, opt_meta = _optimizer_tensors(optimizer)
        tensors.update(opt_tensors)
        if self.task_state is not None:
            tensors.update({"task." + k: v for k, v in self.task_state.state_dict().items()})
        self._write(state_file(state.epoch), state.epoch, tensors, {
            "format": str(CHECKPOINT_FORMAT),
            "run_id": self.run_id,
            "epoch": str(state.epoch),
            "best_epoch": json.dumps(state.best_epoch),
            "best_score": json.dumps(state.best_score),
            "optimizer": json.dumps(opt_meta),
            "scaler": json.dumps(scaler.state_dict() if scaler.is_enabled() else {}),
            "data_fingerprint": self.data_fingerprint or "",
            "cpu_threads": str(self.cpu_threads or 0),
        })
        self._drop_states(keep={state_file(state.epoch), state_file(state.epoch - 1)})

    def _drop_states(self, keep: set[str]) -> None:
        """Forget, then delete, the states not in ``keep`` (a crash in between leaves an unrecorded file)."""
        recorded = runs.checkpoint_records(self.project, self.run_id)
        runs.forget_checkpoints(self.project, self.run_id,
                                [f for f in recorded if f.startswith(STATE_PREFIX) and f not in keep])
        for path in self.dir.glob(STATE_GLOB):
            if path.name not in keep:
                _clear(path)

    def load_best(self, model, best_epoch: int) -> None:
        tensors, _ = load_weights(self._trusted(BEST_FILE, best_epoch))
        model.load_state_dict(tensors)

    def save_model(self, model, spec: TrainSpec, epoch: int) -> str:
        """Write the selected model with what rebuilds it; returns its path as the project stores it."""
        model_spec = getattr(model, "spec", None) or {"name": spec.arch, "num_classes": 4, **spec.model_args}
        self._write(MODEL_FILE, epoch, model_weights(model), {
            "run_id": self.run_id, "arch": spec.arch, "epoch": str(epoch), "spec": json.dumps(spec.to_dict()),
            "feature_set": spec.feature_set, "num_classes": "4", "model_spec": json.dumps(model_spec),
        })
        return self.project.store_path(self.model_path)

    def load_model_file(self) -> tuple[dict[str, torch.Tensor], dict]:
        """The final model's tensors, once the file hashes to its record (a file from before records: as read)."""
        record = runs.checkpoint_records(self.project, self.run_id).get(MODEL_FILE)
        fault = record.fault(self.dir) if record is not None else None
        if record is None and not self.model_path.exists():
            fault = "missing"
        if fault:
            raise TrainError(f"{self.model_path}: {fault}. The run's stored metrics and logits are not affected; a "
                             "new run with the same settings and seed trains the same model again")
        return load_weights(self.model_path)

    def remove_resume_files(self) -> None:
        """Once the run is done its resume state (weights + optimizer) is no longer needed."""
        self._drop_states(keep=set())
        runs.forget_checkpoints(self.project, self.run_id, [BEST_FILE])
        _clear(self.best_path)
        _clear(self.dir / UNRECORDED_STATE)
