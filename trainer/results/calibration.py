"""Calibration: does a model's confidence match how often it is right?

Confidence is the largest softmax probability; an ensemble's probabilities are the softmax of its mean
logits (the same mean logits whose argmax is its prediction). The expected calibration error (ECE) is
the count-weighted mean gap |accuracy - mean confidence| over equal-width confidence bins
``[lower, upper)`` (a confidence of exactly 1 falls in the last bin). ECE is a fraction in [0, 1].
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..evaluate import mean_std
from ..project import Project, ProjectError
from .ensembles import ensemble_logits

DEFAULT_BINS = 10


def softmax(logits) -> np.ndarray:
    """Probabilities over the last axis, computed stably in float64."""
    values = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def calibration(probabilities, labels, bins: int = DEFAULT_BINS) -> dict:
    """ECE and the reliability diagram's data: per bin its edges, mean confidence, accuracy and count.

    Empty bins are listed with count 0 and no confidence or accuracy (None).
    """
    if bins < 1:
        raise ValueError(f"calibration needs at least one bin, got {bins}")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probabilities.ndim != 2 or probabilities.shape[0] != labels.shape[0]:
        raise ValueError(f"{labels.shape[0]} labels but probabilities of shape {probabilities.shape}")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    confidence_sum = np.bincount(which, weights=confidence, minlength=bins)
    correct_sum = np.bincount(which, weights=correct.astype(np.float64), minlength=bins)
    rows, gap = [], 0.0
    for b in range(bins):
        n = int(count[b])
        mean_confidence = confidence_sum[b] / n if n else None
        accuracy = correct_sum[b] / n if n else None
        if n:
            gap += n * abs(accuracy - mean_confidence)
        rows.append({"lower": b / bins, "upper": (b + 1) / bins, "confidence": mean_confidence, "accuracy": accuracy,
                     "count": n})
    total = int(labels.shape[0])
    return {"ece": gap / total if total else math.nan, "n": total, "bins": rows}


def ece(probabilities, labels, bins: int = DEFAULT_BINS) -> float:
    return calibration(probabilities, labels, bins)["ece"]


def collect_calibration(project: Project, groups: Sequence[dict], bins: int = DEFAULT_BINS,
                        split: str = "test") -> list[dict]:
    """For each group with a finished run: the ECE of the ensemble of all its finished runs, and the mean
    and sample standard deviation of its runs' own ECEs (how calibrated one seed is)."""
    out = []
    for group in groups:
        if not group["n"]:
            continue
        try:
            outputs = ensemble_logits(project, group["run_ids"], split)
        except ProjectError as exc:
            out.append({"group": group["group"], "error": str(exc)})
            continue
        per_run = [ece(softmax(outputs.logits[:, k]), outputs.labels, bins) for k in range(len(outputs.run_ids))]
        mean, std = mean_std(per_run)
        out.append({
            "group": group["group"],
            "arch": group["arch"],
            "kind": group["kind"],
            "k": len(outputs.run_ids),
            "ensemble_ece": ece(softmax(outputs.mean_logits), outputs.labels, bins),
            "runs_ece": {"mean": mean, "std": std if len(per_run) > 1 else None, "values": per_run},
            "bins": bins,
            "n_cycles": int(len(outputs.cycle_ids)),
            "run_ids": list(outputs.run_ids),
        })
    return out
