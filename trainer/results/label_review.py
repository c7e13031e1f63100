"""Label review: cycles whose stored label a teacher ensemble confidently contradicts.

The ensemble's probabilities are the softmax of its runs' mean stored logits; a cycle is listed when the
most probable class differs from the stored label and its probability reaches ``min_confidence``. The
most confident disagreements come first: the likeliest annotation errors, for a person to listen to and,
if they agree, relabel (an ordinary edit with history).

Teachers were trained on the train split's labels, so they tend to agree with them there; by default
every split is reviewed, and ``split`` narrows it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..project import Project
from ..vocab import LABELS
from .breakdown import cycle_metadata
from .calibration import softmax
from .ensembles import ensemble_logits, resolve_runs

DEFAULT_MIN_CONFIDENCE = 0.9


def label_review(
    project: Project,
    teachers: str | Sequence[str],
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    split: str | None = None,
    limit: int | None = None,
) -> dict:
    """The disagreeing cycles, most confident first (ties by cycle id), each with what opens it in Listen."""
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"the minimum confidence is a probability in [0, 1], got {min_confidence}")
    run_ids = resolve_runs(project, teachers)
    outputs = ensemble_logits(project, run_ids, split)
    probabilities = softmax(outputs.mean_logits)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities[np.arange(len(predicted)), predicted]
    disagree = predicted != outputs.labels
    chosen = np.flatnonzero(disagree & (confidence >= min_confidence))
    chosen = chosen[np.lexsort((outputs.cycle_ids[chosen], -confidence[chosen]))]
    if limit is not None:
        chosen = chosen[: max(int(limit), 0)]
    metadata = cycle_metadata(project, outputs.cycle_ids[chosen])
    cycles = []
    for row, i in enumerate(chosen):
        label, guess = int(outputs.labels[i]), int(predicted[i])
        cycles.append({
            "cycle_id": int(outputs.cycle_ids[i]),
            "recording": metadata["recording"][row],
            "start": float(metadata["start"][row]),
            "end": float(metadata["end"][row]),
            "label": label,
            "label_name": LABELS[label],
            "predicted": guess,
            "predicted_name": LABELS[guess],
            "probability": float(confidence[i]),
            "label_probability": float(probabilities[i, label]),
        })
    return {
        "teachers": teachers if isinstance(teachers, str) else None,
        "run_ids": run_ids,
        "split": split,
        "min_confidence": min_confidence,
        "n_cycles": int(len(outputs.cycle_ids)),
        "disagreeing": int(disagree.sum()),
        "listed": len(cycles),
        "excluded_cycles": int(outputs.excluded),
        "cycles": cycles,
    }


def format_review(result: dict) -> str:
    """The review as a table, most confident first (what `rsc review` prints)."""
    where = f"split {result['split']}" if result["split"] else "every split"
    head = (f"{result['teachers'] or 'the given runs'} ({len(result['run_ids'])} runs) on {where}: "
            f"{result['n_cycles']} cycles, {result['disagreeing']} disagree with the stored label, "
            f"{result['listed']} listed with probability >= {result['min_confidence']:.2f}")
    if not result["cycles"]:
        return head
    lines = [head, "", f"{'cycle':>7}  {'recording':<28} {'start':>8} {'end':>8}  {'label':<8} {'predicted':<9} "
                       f"{'p':>5} {'p(label)':>8}"]
    for c in result["cycles"]:
        lines.append(f"{c['cycle_id']:>7}  {c['recording']:<28} {c['start']:>8.2f} {c['end']:>8.2f}  "
                     f"{c['label_name']:<8} {c['predicted_name']:<9} {c['probability']:>5.3f} "
                     f"{c['label_probability']:>8.3f}")
    return "\n".join(lines)
