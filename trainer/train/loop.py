"""The fit loop: epochs of batches under a per-epoch learning rate, scoring, and checkpoint selection.

A batch is one tensor index with positions from a seeded generator and SpecAugment runs vectorised
on it. What a batch's loss is belongs to the task; progress, cancel and ETA belong to the hooks; when
an epoch is durable belongs to the checkpoint.
"""

from __future__ import annotations

import contextlib
import math

import torch

from ..evaluate import icbhi_score
from ..features import spec_augment
from .checkpoint import Checkpoint, LoopState
from .data import TrainData, text_rows
from .determinism import AUGMENT_STREAM, GLOBAL_STREAM, ORDER_STREAM, epoch_seed
from .hooks import Hooks
from .spec import TrainError, TrainSpec
from .tasks import Batch, HardLabelTask, SoftLabelTask, class_weights


def lr_at(spec: TrainSpec, epoch_index: int) -> float:
    """Learning rate of the epoch with 0-based index ``epoch_index`` (cosine to lr * min_lr_ratio)."""
    if spec.scheduler == "constant" or spec.epochs == 1:
        return spec.lr
    floor = spec.lr * spec.min_lr_ratio
    return floor + 0.5 * (spec.lr - floor) * (1 + math.cos(math.pi * epoch_index / (spec.epochs - 1)))


def score(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    result = icbhi_score(labels.numpy(), logits.argmax(dim=1).numpy())
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in result.items()}


class FitLoop:
    """Trains from ``state`` to the spec's last epoch; :meth:`final_outputs` then gives metrics and logits."""

    def __init__(
        self, *, run_id: str, spec: TrainSpec, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler, task: HardLabelTask | SoftLabelTask, data: TrainData, device: torch.device,
        hooks: Hooks, checkpoint: Checkpoint, state: LoopState,
    ):
        self.run_id, self.spec, self.model, self.optimizer, self.scaler = run_id, spec, model, optimizer, scaler
        self.task, self.data, self.device, self.hooks = task, data, device, hooks
        self.checkpoint, self.state = checkpoint, state
        self.y_fit = data.y_all[data.fit_pos].to(device)
        self._augment_gen: torch.Generator | None = None
        # Per class: the balanced loss's weights (balance "loss") or the sampler's draw weights ("sampler").
        self._weights = class_weights(self.y_fit) if spec.balance in ("loss", "sampler") else None
        self.loss_weights = self._weights if spec.balance == "loss" else None

    def autocast(self):
        if self.scaler.is_enabled():  # fp16 autocast and loss scaling go together
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    @torch.no_grad()
    def predict(self, x: torch.Tensor, text=None, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (float32, CPU) of the model in eval mode for ``x[positions]`` (all rows if None)."""
        self.model.eval()
        n = len(positions) if positions is not None else x.shape[0]
        size = self.spec.eval_batch_size
        out = []
        for start in range(0, n, size):
            index = torch.arange(start, min(n, start + size))
            if positions is not None:
                index = positions[index]
            xb = x[index.to(x.device)].float()
            with self.autocast():
                logits = self.model(xb, text=text_rows(text, index, self.device))
            out.append(logits.float().cpu())
        return torch.cat(out) if out else torch.zeros((0, 4))

    # -- one epoch -------------------------------------------------------------------------
    def start_epoch(self) -> torch.Tensor:
        """Seed the epoch's streams, set its learning rate and return its order of fitted positions."""
        spec, epoch = self.spec, self.state.epoch + 1
        torch.manual_seed(epoch_seed(spec.seed, epoch, GLOBAL_STREAM))  # dropout and anything else global
        order_gen = torch.Generator().manual_seed(epoch_seed(spec.seed, epoch, ORDER_STREAM))
        self._augment_gen = torch.Generator(device=self.device).manual_seed(epoch_seed(spec.seed, epoch, AUGMENT_STREAM))
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(spec, self.state.epoch)
        self.task.start_epoch(self.state.epoch)
        self.model.train()
        n = len(self.data.fit_pos)
        if spec.balance == "sampler":  # as many draws as cycles, each class equally likely, from the order stream
            return torch.multinomial(self._weights[self.y_fit.cpu()].double(), n, replacement=True, generator=order_gen)
        return torch.randperm(n, generator=order_gen)

    def train_epoch(self) -> float:
        """One pass over the fitted cycles; returns the mean loss."""
        spec, epoch = self.spec, self.state.epoch + 1
        perm = self.start_epoch()
        n = len(self.data.fit_pos)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        parts: dict[str, torch.Tensor] = {}  # the terms of a task whose loss has several (feature KD)
        seen = 0
        batches = math.ceil(n / spec.batch_size)
        for b in range(batches):
            local = perm[b * spec.batch_size : (b + 1) * spec.batch_size]
            if len(local) < 2:
                continue  # a batch of one breaks batch norm; the sample is seen in other epochs
            total += self.step(local).detach().double() * len(local)
            for name, value in (getattr(self.task, "last_losses", None) or {}).items():
                parts[name] = parts.get(name, 0) + value.double() * len(local)
            seen += len(local)
            self.hooks.call("on_batch_end", self.state, b + 1, batches)
        self.loss_parts = {name: float(value.item()) / max(seen, 1) for name, value in parts.items()}
        loss = float(total.item()) / max(seen, 1)
        if not math.isfinite(loss):
            raw = "; raw-logits targets do not converge" if spec.targets.get("mode") == "raw-logits" else ""
            raise TrainError(f"run {self.run_id}: the loss became {loss} in epoch {epoch} (lower the learning rate{raw})")
        return loss

    def step(self, local: torch.Tensor) -> torch.Tensor:
        """One optimiser step on the fitted cycles at positions ``local``; returns the batch's loss."""
        positions = local.to(self.device)
        rows = self.data.fit_pos[local]
        x = self.data.x_all[rows.to(self.device)].float()
        if self.spec.spec_augment:
            x = spec_augment(x, generator=self._augment_gen)
        batch = Batch(x, text_rows(self.data.text_all, rows, self.device), self.y_fit[positions], positions,
                      class_weights=self.loss_weights)
        with self.autocast():
            loss, _ = self.task.forward(self.model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss

    def evaluate(self) -> tuple[dict, dict | None]:
        """Scores on the test split and, where there is one, the validation split."""
        data = self.data
        test = score(self.predict(data.x_test, data.text_test), data.y_test)
        if not len(data.val_pos):
            return test, None
        return test, score(self.predict(data.x_all, data.text_all, data.val_pos), data.y_all[data.val_pos])

    def select(self, test: dict, val: dict | None) -> bool:
        """Whether the epoch just finished is the best so far by the spec's selection."""
        if self.spec.select == "last":
            return False
        chosen = (val if self.spec.select == "val" else test)["score"]
        # NaN (a split without normal or abnormal cycles) ranks below every defined score: it never
        # displaces a defined best, and the first epoch stands only while no epoch has one.
        chosen = chosen if math.isfinite(chosen) else -math.inf
        if self.state.best_score is not None and not chosen > self.state.best_score:
            return False
        self.state.best_epoch, self.state.best_score = self.state.epoch, float(chosen)
        return True

    # -- the run ---------------------------------------------------------------------------
    def fit(self) -> None:
        state, spec = self.state, self.spec
        while state.epoch < spec.epochs:
            self.hooks.call("on_epoch_start", state)
            loss = self.train_epoch()
            self.end_epoch(loss)

    def end_epoch(self, loss: float) -> dict:
        """Score the epoch just trained, select, and make it durable; returns its history entry."""
        state, spec = self.state, self.spec
        test, val = self.evaluate()
        state.epoch += 1
        is_best = self.select(test, val)
        entry = {
            "epoch": state.epoch, "epochs": spec.epochs, "loss": loss, "lr": lr_at(spec, state.epoch - 1),
            "sp": test["sp"], "se": test["se"], "score": test["score"],
            "val_sp": val["sp"] if val else None, "val_se": val["se"] if val else None,
            "val_score": val["score"] if val else None, "best": is_best,
            **({"loss_parts": self.loss_parts} if getattr(self, "loss_parts", None) else {}),
        }
        self.hooks.call("on_epoch_end", state, entry)
        state.history.append(entry)
        self.checkpoint.save_epoch(self.model, self.optimizer, self.scaler, state, entry, is_best)
        self.hooks.call("on_epoch_saved", state, entry)
        return entry

    def final_outputs(self) -> tuple[dict, torch.Tensor, int]:
        """Final metrics, the selected model's logits on every cycle (training split, then test) and its epoch."""
        spec, state, data = self.spec, self.state, self.data
        selected = state.epoch
        if spec.select != "last":
            self.checkpoint.load_best(self.model, state.best_epoch)
            selected = state.best_epoch
        total = len(data.train_rows) + len(data.test_rows)
        self.hooks.call("on_logits", 0, total)
        train_logits = self.predict(data.x_all, data.text_all)
        test_logits = self.predict(data.x_test, data.text_test)
        self.hooks.call("on_logits", total, total)
        test = score(test_logits, data.y_test)
        metrics = {
            "sp": test["sp"], "se": test["se"], "score": test["score"], "confusion": test["confusion"], "n": test["n"],
            "selection": spec.select, "epoch": selected, "epochs": spec.epochs,
            "loss": state.history[selected - 1]["loss"] if state.history else None,
        }
        if spec.select == "test":
            metrics["protocol"] = "reference: epoch picked on the test set (optimistic)"
        if len(data.val_pos):
            val = score(train_logits[data.val_pos], data.y_all[data.val_pos])
            metrics["val"] = {"sp": val["sp"], "se": val["se"], "score": val["score"], "n": val["n"],
                              "cycles": len(data.val_ids)}
        return metrics, torch.cat([train_logits, test_logits]), selected
