"""The ICBHI metric broken down by device, chest location and age group.

Each subgroup is scored with :func:`trainer.evaluate.icbhi_score` on its own cycles; the subgroups of a
dimension partition the cycles, so their counts add up to the overall ones. A cycle whose recording
or patient has no value for a dimension is counted under ``unknown``.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..evaluate import icbhi_score
from ..project import Project
from ..vocab import age_group

# The metadata fields of :func:`cycle_metadata` a breakdown groups by.
DIMENSIONS = ("device", "chest_location", "age_group")
UNKNOWN = "unknown"
_CHUNK = 900  # far below SQLite's host-parameter limit

_METADATA_SQL = (
    'SELECT c.id, r.name, c.start, c."end", r.device, r.chest_location, p.age_group, p.age '
    "FROM cycles c JOIN recordings r ON r.id = c.recording_id LEFT JOIN patients p ON p.id = r.patient_id "
)


def cycle_metadata(project: Project, cycle_ids: Iterable[int]) -> dict[str, np.ndarray]:
    """Per cycle, in the given order: recording name, start, end, device, chest location and age group.

    Missing values read ``unknown``; an age group the importer did not store is derived from the age.
    """
    ids = [int(c) for c in cycle_ids]
    found: dict[int, tuple] = {}
    for at in range(0, len(ids), _CHUNK):
        chunk = ids[at : at + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for row in project.db.execute(_METADATA_SQL + f"WHERE c.id IN ({marks})", chunk):
            found[row[0]] = row
    missing = [cid for cid in ids if cid not in found]
    if missing:
        raise ValueError(f"no cycle with id {missing[0]} in {project.path.name}")
    rows = [found[cid] for cid in ids]

    def text(values) -> np.ndarray:
        return np.array([v if v not in (None, "") else UNKNOWN for v in values], dtype=object)

    return {
        "recording": np.array([r[1] for r in rows], dtype=object),
        "start": np.array([r[2] for r in rows], dtype=np.float64),
        "end": np.array([r[3] for r in rows], dtype=np.float64),
        "device": text(r[4] for r in rows),
        "chest_location": text(r[5] for r in rows),
        "age_group": text(r[6] or age_group(r[7]) for r in rows),
    }


def _mean(values: Sequence[float]) -> float:
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else math.nan


def subgroup_metrics(labels: np.ndarray, predictions: np.ndarray) -> dict:
    """Counts and Sp/Se/Score of one subgroup; predictions (n,) or (n, K) (then the mean over the K runs)."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    normal = labels == 0
    row = {"n": int(labels.size), "normal": int(normal.sum()), "abnormal": int((~normal).sum())}
    if predictions.ndim == 1:
        metrics = icbhi_score(labels, predictions)
        confusion = metrics["confusion"]
        row.update(sp=metrics["sp"], se=metrics["se"], score=metrics["score"],
                   normal_hits=int(confusion[0, 0]), abnormal_hits=int(np.trace(confusion[1:, 1:])),
                   confusion=confusion.tolist())
        return row
    per_run = [icbhi_score(labels, predictions[:, k]) for k in range(predictions.shape[1])]
    row.update({key: _mean([m[key] for m in per_run]) for key in ("sp", "se", "score")})
    return row


def _order(value: str) -> tuple:
    return (value == UNKNOWN, str(value))


def metric_breakdown(labels, predictions, groups: Mapping[str, Sequence]) -> dict[str, list[dict]]:
    """For each dimension in ``groups`` (name -> one value per cycle): a row per value, sorted, unknown last."""
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    out = {}
    for dimension, values in groups.items():
        values = np.asarray(values, dtype=object)
        if values.shape[0] != labels.shape[0]:
            raise ValueError(f"{dimension}: {values.shape[0]} values for {labels.shape[0]} cycles")
        rows = []
        for value in sorted(set(values.tolist()), key=_order):
            chosen = values == value
            rows.append({"value": value, **subgroup_metrics(labels[chosen], predictions[chosen])})
        out[dimension] = rows
    return out


def breakdown(project: Project, cycle_ids, labels, predictions, dimensions: Iterable[str] = DIMENSIONS) -> dict:
    """:func:`metric_breakdown` by the recordings' device, chest location and the patients' age group."""
    metadata = cycle_metadata(project, cycle_ids)
    return metric_breakdown(labels, predictions, {d: metadata[d] for d in dimensions})
