"""Reproducible numbers: per-epoch random streams, deterministic kernels, a fixed CPU thread count.

Every random stream of an epoch (batch order, SpecAugment masks, dropout, random teacher draws) is
seeded from (run seed, epoch) at the start of that epoch, so the state at an epoch boundary is fully
described by the weights, the optimizer (and AMP scaler) state and the epoch number.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import torch

# The streams of one epoch: the global torch stream (dropout, initial weights), batch order, SpecAugment;
# then the CED student's draw of a stored view per cycle, and a feature-KD projector's initial weights.
GLOBAL_STREAM, ORDER_STREAM, AUGMENT_STREAM = 0, 1, 2
CED_VIEW_STREAM, FEATURE_KD_STREAM = 5, 6


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A 63-bit seed for one random stream of one epoch of one run."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), stream]).generate_state(2, np.uint64)[0] >> 1)


@contextlib.contextmanager
def cpu_threads(count: int | None):
    if not count:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def deterministic(enabled: bool, device: str):
    if not enabled:
        yield
        return
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    if device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
