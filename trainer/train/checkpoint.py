"""Checkpoints: the one owner of a run's resume state, and the safetensors files of its models.

A run's folder (``<project>.d/runs/<run id>/``) holds ``state.safetensors`` (weights, optimizer and
AMP scaler state, epoch, best epoch and score: everything the loop needs to continue), while it
trains with selection ``val`` or ``test`` also ``best.safetensors`` (the best weights so far), and
once done ``model.safetensors`` (the selected model, which rebuilds itself from its metadata).

The epoch history lives in ``run_epochs`` only. After every epoch the best weights are written
first, then the epoch's row, then the state, each atomically: a process killed at any point leaves
the previous complete state, and the rows of epochs after it are dropped on resume. The interrupted
epoch is then redone with the same random numbers, rewriting the same best weights and the same row.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import runs
from ..files import remove_stale_temps, write_atomic
from ..project import Project
from .spec import TrainError, TrainSpec

CHECKPOINT_FORMAT = 1


def checkpoint_dir(project: Project, run_id: str) -> Path:
    return project.artifacts / "runs" / run_id


def model_weights(model: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    # Copies: safetensors refuses tensors sharing storage (tied weights) and needs CPU memory.
    return {prefix + k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def save_weights(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]) -> None:
    """Write a safetensors file atomically: a reader sees the old file or the whole new one."""
    from safetensors.torch import save_file

    write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights and metadata of a model checkpoint (safetensors; never unpickled)."""
    from safetensors import safe_open

    tensors = {}
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
        for key in handle.keys():
            tensors[key] = handle.get_tensor(key)
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


class Checkpoint:
    """The files of one run, and the order in which an epoch is made durable."""

    def __init__(self, project: Project, run_id: str):
        self.project, self.run_id = project, run_id
        self.dir = checkpoint_dir(project, run_id)
        self.state_path = self.dir / "state.safetensors"
        self.best_path = self.dir / "best.safetensors"
        self.model_path = self.dir / "model.safetensors"
        # Stamped into every state file: the data it was trained on, the CPU threads a resume must use.
        self.data_fingerprint = ""
        self.cpu_threads: int | None = None

    def exists(self) -> bool:
        return self.state_path.exists()

    def stored_cpu_threads(self) -> int:
        """The CPU thread count the run trained with so far (0: none stored)."""
        if not self.exists():
            return 0
        from safetensors import safe_open

        with safe_open(str(self.state_path), framework="pt") as handle:
            return int((handle.metadata() or {}).get("cpu_threads") or 0)

    def start_fresh(self) -> None:
        """A fresh start (or a restart before the first epoch was saved): nothing of an earlier attempt stays."""
        self.dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.dir)
        for stale in (self.best_path, self.model_path):
            stale.unlink(missing_ok=True)
        runs.reset_results(self.project, self.run_id)

    def save_epoch(self, model, optimizer, scaler, state: LoopState, entry: dict, is_best: bool) -> None:
        """Make the finished epoch ``state.epoch`` durable: best weights, its run_epochs row, then the state."""
        if is_best:
            save_weights(model_weights(model), self.best_path, {"run_id": self.run_id, "epoch": str(state.epoch)})
        runs.record_epoch(self.project, self.run_id, state.epoch, entry)
        tensors = model_weights(model, "model.")
        opt_tensors, opt_meta = _optimizer_tensors(optimizer)
        tensors.update(opt_tensors)
        save_weights(tensors, self.state_path, {
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

    def restore(self, model, optimizer, scaler, state: LoopState) -> None:
        """Load the last saved epoch into the model, optimizer, scaler and ``state`` (history from run_epochs)."""
        remove_stale_temps(self.dir)
        tensors, meta = load_weights(self.state_path)
        if meta.get("run_id") != self.run_id or int(meta.get("format", 0)) != CHECKPOINT_FORMAT:
            raise TrainError(f"{self.state_path}: not a checkpoint of run {self.run_id}")
        model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        optimizer.load_state_dict(_optimizer_state(tensors, json.loads(meta["optimizer"])))
        scaler_state = json.loads(meta.get("scaler") or "{}")
        if scaler_state and scaler.is_enabled():
            scaler.load_state_dict(scaler_state)
        epoch = int(meta["epoch"])
        # Rows past the state are from an epoch killed between its two writes: it is redone.
        runs.truncate_epochs(self.project, self.run_id, epoch)
        history = [{k: v for k, v in row.items() if k != "at"} for row in runs.run_epochs(self.project, self.run_id)]
        if [row["epoch"] for row in history] != list(range(1, epoch + 1)):
            raise TrainError(
                f"run {self.run_id}: the project holds {len(history)} of the {epoch} epochs in {self.state_path}; "
                "the checkpoint cannot be continued (start a new run instead)"
            )
        state.epoch, state.history = epoch, history
        state.best_epoch, state.best_score = json.loads(meta["best_epoch"]), json.loads(meta["best_score"])

    def load_best(self, model, best_epoch: int) -> None:
        tensors, meta = load_weights(self.best_path)
        if int(meta.get("epoch", -1)) != best_epoch:
            raise TrainError(f"{self.best_path}: holds epoch {meta.get('epoch')}, expected {best_epoch}")
        model.load_state_dict(tensors)

    def save_model(self, model, spec: TrainSpec, epoch: int) -> str:
        """Write the selected model with what rebuilds it; returns its path as the project stores it."""
        model_spec = getattr(model, "spec", None) or {"name": spec.arch, "num_classes": 4, **spec.model_args}
        save_weights(model_weights(model), self.model_path, {
            "run_id": self.run_id, "arch": spec.arch, "epoch": str(epoch), "spec": json.dumps(spec.to_dict()),
            "feature_set": spec.feature_set, "num_classes": "4", "model_spec": json.dumps(model_spec),
        })
        return self.project.store_path(self.model_path)

    def remove_resume_files(self) -> None:
        """Once the run is done its resume state (weights + optimizer) is no longer needed."""
        for path in (self.state_path, self.best_path):
            path.unlink(missing_ok=True)
