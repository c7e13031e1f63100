"""Train k models of one architecture together in one batched step (torch.func).

A teacher ensemble is k copies of one architecture that differ only in their seed. Launched one after
the other, each small CNN6 step leaves a large GPU mostly idle; stacked, the k models' weights become
one leading dimension and ``vmap(functional_call)`` runs all k forward and backward passes as single
batched kernels (a convolution over k stacked weight sets lowers to one grouped convolution).

Numerically this is k independent models: each has its own parameters, BatchNorm statistics (the
stacked buffers are updated in place under vmap, per model), inputs and targets. The loss is the sum
of the k per-model mean losses, so each model's slice of the gradient is exactly the gradient it would
get alone, and element-wise optimisers (SGD, Adam, AdamW) then give each model exactly its separate
update. A global gradient-norm clip would couple the models; clip per model if needed
(:func:`clip_grad_norm_per_model`).

Runs do not train stacked yet; ``benchmarks/bench_train_gpu.py`` measures it against one model.
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


class StackedModels:
    """k models with identical structure, held as stacked parameters and buffers (leading dim k)."""

    def __init__(self, models: Sequence[nn.Module]):
        models = list(models)
        if not models:
            raise ValueError("no models to stack")
        names = [tuple(n for n, _ in m.named_parameters()) for m in models]
        if any(n != names[0] for n in names):
            raise ValueError("models to stack must share one architecture (their parameter names differ)")
        self.k = len(models)
        params, buffers = stack_module_state(models)
        self.params: dict[str, torch.Tensor] = params
        self.buffers: dict[str, torch.Tensor] = buffers
        # A weightless template: functional_call supplies every tensor, so the copy holds no memory.
        self.template = copy.deepcopy(models[0]).to("meta")
        self.template.train(models[0].training)

    # -- module-like interface ------------------------------------------------------------------
    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def train(self, mode: bool = True) -> "StackedModels":
        self.template.train(mode)
        return self

    def eval(self) -> "StackedModels":
        return self.train(False)

    @property
    def training(self) -> bool:
        return self.template.training

    def to(self, device=None, dtype=None) -> "StackedModels":
        def move(t: torch.Tensor) -> torch.Tensor:
            moved = t.to(device=device, dtype=dtype if (dtype is not None and t.is_floating_point()) else None)
            return moved.detach().requires_grad_(t.requires_grad)

        self.params = {n: move(p) for n, p in self.params.items()}
        self.buffers = {n: t.to(device=device) for n, t in self.buffers.items()}
        return self

    def _call(self, params, buffers, x):
        return functional_call(self.template, (params, buffers), (x,))

    def __call__(self, x: torch.Tensor, shared_input: bool = False) -> torch.Tensor:
        """Logits (k, B, C). ``x`` is (k, B, ...) with one batch per model, or (B, ...) if shared_input."""
        if not shared_input and x.shape[0] != self.k:
            raise ValueError(f"per-model input must have leading dimension k={self.k}, got shape {tuple(x.shape)}")
        in_x = None if shared_input else 0
        return vmap(self._call, in_dims=(0, 0, in_x), randomness="different")(self.params, self.buffers, x)

    forward = __call__

    # -- back to separate models -------------------------------------------------------------
    def state_dict(self, index: int) -> dict[str, torch.Tensor]:
        """Model ``index``'s state dict (parameters and buffers), detached copies."""
        state = {n: p[index].detach().clone() for n, p in self.params.items()}
        state.update({n: b[index].detach().clone() for n, b in self.buffers.items()})
        return state

    def load_into(self, models: Sequence[nn.Module]) -> None:
        """Write the stacked weights back into k separate modules (e.g. to save k checkpoints)."""
        if len(models) != self.k:
            raise ValueError(f"expected {self.k} models, got {len(models)}")
        for i, model in enumerate(models):
            model.load_state_dict(self.state_dict(i))


def stacked_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum over models of each model's mean cross-entropy; logits (k, B, C), labels (k, B) or soft (k, B, C)."""
    k, b, c = logits.shape
    if labels.dim() == 3:  # soft targets
        per_model = -(labels * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean(dim=1)
        return per_model.sum()
    return F.cross_entropy(logits.reshape(k * b, c), labels.reshape(k * b)) * k


def clip_grad_norm_per_model(stacked: StackedModels, max_norm: float) -> torch.Tensor:
    """Clip each model's gradient to max_norm separately (a global clip would couple the models)."""
    grads = [p.grad for p in stacked.parameters() if p.grad is not None]
    norms = torch.sqrt(sum(g.reshape(stacked.k, -1).pow(2).sum(dim=1) for g in grads))
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))
    return norms


def train_step(
    stacked: StackedModels,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    labels: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = stacked_loss,
    shared_input: bool = False,
) -> torch.Tensor:
    """One optimisation step of all k models; returns each model's loss (k,) detached."""
    stacked.train()
    optimizer.zero_grad(set_to_none=True)
    logits = stacked(x, shared_input=shared_input)
    loss = loss_fn(logits, labels)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        k, b, c = logits.shape
        if labels.dim() == 3:
            per_model = -(labels * F.log_softmax(logits, dim=-1)).sum(-1).mean(1)
        else:
            per_model = F.cross_entropy(logits.reshape(k * b, c), labels.reshape(k * b), reduction="none").view(k, b).mean(1)
    return per_model.detach()
