"""Soft-label targets from stored teacher logits (paper 001, REFERENCE.md section 5).

Teacher knowledge reaches a student only through the teachers' stored logits on the training cycles,
an array of shape (N cycles, K teachers, C classes) keyed by cycle id (never by loader position). A
:class:`TargetProvider` turns them into one target row per cycle for a given epoch; the fit loop
indexes that (N, C) tensor with its batch's positions and passes the rows to
:func:`trainer.distill.losses.distillation_loss`.

Modes (``TargetProvider.mode``):

``hard``
    one-hot of the label (plain training; k = 0 in the teacher-count study).
``mean`` / ``curated`` / ``single``
    p = softmax(mean_k z_k / T). ``curated`` and ``single`` differ only in which teachers
    :func:`trainer.distill.teachers.select_teachers` picked (the k best by stored score, or one).
``random``
    p = softmax(z_i / T) with i drawn uniformly per cycle, redrawn every epoch; the draw depends only
    on (seed, epoch), so a resumed run sees the same targets it would have seen.
``noise-const``
    one-hot + Gaussian noise of variance ``noise_var`` (0.1), redrawn every epoch.
``noise-teacher-var``
    one-hot + Gaussian noise whose per-class variance is the variance, over the training cycles, of
    the mean teacher's soft label p_mu[:, c] (paper: "models the variance of mean teacher logits on
    the training dataset and adds the equivalent noise vector to the training target label"). The
    variance is taken of the softmax outputs rather than of raw logits because the noise is added to
    a probability-scale target; one variance per class, shared by all cycles, redrawn every epoch.
``raw-logits``
    the mean raw teacher logits used directly as the target, with no softmax. Cross-entropy against
    such a target is unbounded below (negative entries reward pushing the student's probability of
    that class to zero without limit), which is why the paper reports it "failed to converge". We
    reproduce the ablation as published; it is not a mode to use.

Noised targets are neither clipped nor renormalised: the paper describes only "adds a Gaussian noise
vector ... across training target label", and cross-entropy with real-valued targets
(-sum_c y_c log q_c) is well defined for them. The noise has zero mean, so each target equals the
one-hot label in expectation; individual rows may have entries below 0 or above 1 and need not sum
to 1. (Clipping or renormalising would bias the expected target away from the label.)

Temperature T (default 1, as in the paper) divides the teacher logits before the softmax (the loss
applies the same T to the student).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .modes import DEFAULT_NUM_CLASSES, MODES, STOCHASTIC_MODES, TEACHER_MODES, DistillError

# Distinct stream tags so the random-teacher draw and the noise draw never share random numbers.
_STREAM = {"random": 1, "noise-const": 2, "noise-teacher-var": 3}


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _checked_logits(teacher_logits: np.ndarray | None, n: int) -> np.ndarray | None:
    """The teachers' logits as float64 (N, K, C), or None when there are no teachers."""
    if teacher_logits is None:
        return None
    logits = np.asarray(teacher_logits, dtype=np.float64)
    if logits.ndim != 3:
        raise DistillError(f"teacher logits must have shape (cycles, teachers, classes), got {logits.shape}")
    if logits.shape[0] != n:
        raise DistillError(f"teacher logits cover {logits.shape[0]} cycles but there are {n} labels")
    if not np.isfinite(logits).all():
        bad = np.argwhere(~np.isfinite(logits))[0]
        raise DistillError(f"teacher logits are not finite (first at cycle {bad[0]}, teacher {bad[1]})")
    return None if logits.shape[1] == 0 else logits


class TargetProvider:
    """Per-epoch training targets for N cycles from the teachers' logits (N, K, C) and labels (N,)."""

    def __init__(
        self,
        teacher_logits: np.ndarray | None,
        labels: np.ndarray,
        mode: str,
        seed: int,
        noise_var: float = 0.1,
        temperature: float = 1.0,
        *,
        num_classes: int | None = None,
    ):
        if mode not in MODES:
            raise DistillError(f"unknown target mode {mode!r} (expected one of {', '.join(MODES)})")
        if not temperature > 0 or not math.isfinite(temperature):
            raise DistillError(f"temperature must be a positive number, got {temperature!r}")
        if not noise_var >= 0 or not math.isfinite(noise_var):
            raise DistillError(f"noise variance must be >= 0, got {noise_var!r}")
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise DistillError(f"labels must be a 1-d array of class indices, got shape {labels.shape}")
        self.mode = mode
        self.seed = int(seed)
        self.noise_var = float(noise_var)
        self.temperature = float(temperature)
        self.labels = labels.astype(np.int64)
        n = len(labels)

        logits = _checked_logits(teacher_logits, n)
        if mode in TEACHER_MODES and logits is None:
            raise DistillError(f"target mode {mode!r} needs teacher logits (at least one teacher)")
        if mode == "single" and logits.shape[1] != 1:
            raise DistillError(f"target mode 'single' takes exactly one teacher, got {logits.shape[1]}")
        self.num_classes = int(num_classes or (logits.shape[2] if logits is not None else DEFAULT_NUM_CLASSES))
        if logits is not None and logits.shape[2] != self.num_classes:
            raise DistillError(f"teacher logits have {logits.shape[2]} classes, expected {self.num_classes}")
        if n and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise DistillError(f"labels must lie in 0..{self.num_classes - 1}, got {labels.min()}..{labels.max()}")
        self.n_teachers = 0 if logits is None else logits.shape[1]
        self._logits = logits
        self.onehot = np.eye(self.num_classes)[self.labels] if n else np.zeros((0, self.num_classes))

        # Fixed parts are computed once; per-epoch work is one vectorised draw.
        self._fixed: torch.Tensor | None = None
        self.noise_std = None
        if mode == "hard":
            self._fixed = torch.from_numpy(self.onehot).float()
        elif mode in ("mean", "curated", "single"):
            self._fixed = torch.from_numpy(_softmax(logits.mean(axis=1) / self.temperature)).float()
        elif mode == "raw-logits":
            self._fixed = torch.from_numpy(logits.mean(axis=1)).float()
        elif mode == "random":
            self._probs = _softmax(logits / self.temperature, axis=-1)  # (N, K, C)
        elif mode == "noise-const":
            self.noise_std = np.full(self.num_classes, math.sqrt(self.noise_var))
        elif mode == "noise-teacher-var":
            p_mean = _softmax(logits.mean(axis=1))
            self.class_variance = p_mean.var(axis=0)
            self.noise_std = np.sqrt(self.class_variance)

    @property
    def soft(self) -> bool:
        """True where the loss is cross-entropy against target rows rather than against class indices."""
        return self.mode != "hard"

    @property
    def stochastic(self) -> bool:
        return self.mode in STOCHASTIC_MODES

    def __len__(self) -> int:
        return len(self.labels)

    def _rng(self, epoch: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, int(epoch), _STREAM[self.mode]]))

    def teacher_choice(self, epoch: int) -> np.ndarray:
        """Random mode: index of the teacher drawn for each cycle at this epoch (N,)."""
        if self.mode != "random":
            raise DistillError("teacher_choice exists only in 'random' mode")
        return self._rng(epoch).integers(0, self.n_teachers, size=len(self.labels))

    def targets(self, epoch: int) -> torch.Tensor:
        """The (N, C) float32 target rows for one epoch (same tensor every epoch for fixed modes)."""
        if self._fixed is not None:
            return self._fixed
        if self.mode == "random":
            choice = self.teacher_choice(epoch)
            rows = self._probs[np.arange(len(choice)), choice]
            return torch.from_numpy(rows).float()
        noise = self._rng(epoch).standard_normal(self.onehot.shape) * self.noise_std
        return torch.from_numpy(self.onehot + noise).float()

    def describe(self) -> dict:
        """What went into the targets, for the run's stored specification."""
        info = {"mode": self.mode, "seed": self.seed, "teachers": self.n_teachers, "temperature": self.temperature}
        if self.mode in ("noise-const", "noise-teacher-var"):
            info["noise_std"] = [float(s) for s in self.noise_std]
        return info
