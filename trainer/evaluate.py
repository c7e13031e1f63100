"""The ICBHI challenge metric (REFERENCE.md section 6) and summaries over runs."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

NUM_CLASSES = 4


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int], num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Counts with true labels as rows and predictions as columns."""
    labels = np.asarray(labels, dtype=np.int64).ravel()
    predictions = np.asarray(predictions, dtype=np.int64).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.size} labels but {predictions.size} predictions")
    for name, values in (("label", labels), ("prediction", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"a {name} is outside 0..{num_classes - 1}")
    return np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def icbhi_score(labels: Sequence[int], predictions: Sequence[int]) -> dict:
    """Specificity, sensitivity and score in percent, with the 4x4 confusion matrix and the two-class
    (normal against abnormal) numbers under ``two_class``.

    A cycle is a hit only when the 4-class prediction equals its label. Sp = hits(normal) / normal;
    Se = hits(crackle + wheeze + both) / (crackle + wheeze + both); Score = (Sp + Se) / 2. A split with
    no normal (or no abnormal) cycle has an undefined Sp (Se), given as NaN; the published code divides
    by count + 1e-10 and gives 0, a number that reads like a result.
    """
    cm = confusion_matrix(labels, predictions)
    normal = cm[0].sum()
    abnormal = cm[1:].sum()
    sp = 100.0 * cm[0, 0] / normal if normal else math.nan
    se = 100.0 * np.trace(cm[1:, 1:]) / abnormal if abnormal else math.nan
    return {
        "sp": float(sp),
        "se": float(se),
        "score": float((sp + se) / 2.0),
        "confusion": cm,
        "n": int(cm.sum()),
        "accuracy": float(100.0 * np.trace(cm) / cm.sum()) if cm.sum() else math.nan,
        "two_class": two_class_score(cm),
    }


def two_class_score(confusion) -> dict:
    """Normal against any abnormal, from a 4x4 confusion matrix (true rows, predicted columns).

    An abnormal cycle predicted as any abnormal class is a hit (a crackle called wheeze counts):
    Sp = normal predicted normal / normal, Se = abnormal predicted abnormal / abnormal, Score their
    mean, in percent; undefined (NaN) as in :func:`icbhi_score`.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    if cm.shape != (NUM_CLASSES, NUM_CLASSES) or (cm < 0).any():
        raise ValueError(f"expected a {NUM_CLASSES}x{NUM_CLASSES} confusion matrix of counts, got shape {cm.shape}")
    normal, abnormal = cm[0].sum(), cm[1:].sum()
    sp = 100.0 * cm[0, 0] / normal if normal else math.nan
    se = 100.0 * cm[1:, 1:].sum() / abnormal if abnormal else math.nan
    return {"sp": float(sp), "se": float(se), "score": float((sp + se) / 2.0)}


def two_class_of(metrics: dict) -> dict | None:
    """A run's two-class numbers: stored ones, else computed from its stored confusion matrix (runs made
    before they were stored); None where neither is there, so that no number is made up."""
    stored = metrics.get("two_class")
    if isinstance(stored, dict) and all(k in stored for k in ("sp", "se", "score")):
        return {k: _float(stored[k]) for k in ("sp", "se", "score")}
    confusion = metrics.get("confusion")
    if confusion is None:
        return None
    try:
        return two_class_score(confusion)
    except (ValueError, TypeError):
        return None


def _float(value) -> float:
    return math.nan if value is None else float(value)  # strict JSON wrote an undefined value as null


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1, as over seeds); a single value has std 0."""
    array = np.asarray([v for v in values], dtype=np.float64)
    if array.size == 0:
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def summarise_runs(metrics: Sequence[dict], keys: Sequence[str] = ("sp", "se", "score")) -> dict:
    """Mean and standard deviation of each metric over runs: {"sp": (mean, std), ..., "n": runs}."""
    summary = {key: mean_std(m[key] for m in metrics) for key in keys}
    summary["n"] = len(metrics)
    return summary
