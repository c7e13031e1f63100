"""The ``classifications`` table: what a model said of each cycle of a classified recording.

One row per cycle: the model's identity in ``run_id`` (``run:<id>``, ``group:<name>`` or
``onnx:<run or architecture>@<sha256 prefix>``, so a row says which model and which version of its
file), the audio path as the project stores paths (relative to it where possible), the span, the
probabilities (JSON, class -> p), the label (class number; NULL when the cycle was uncertain) and
the time. Classifying a recording again with the same model replaces its rows, in one transaction.

This is the table's one owner until it moves under :mod:`trainer.project`, where tables belong.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..project import Project, now
from ..vocab import LABELS
from .classify import UNCERTAIN, RecordingResult

TABLE = "classifications"


def store_result(project: Project, result: RecordingResult) -> list[int]:
    """Store one recording's result (replacing the same model's earlier rows for it); returns the row ids."""
    audio = project.store_path(Path(result.path))
    at = now()
    with project.transaction():
        project.db.execute(f"DELETE FROM {TABLE} WHERE run_id = ? AND audio_path = ?", [result.model, audio])
        ids = []
        for cycle in result.cycles:
            label = None if cycle.label == UNCERTAIN else LABELS.index(cycle.label)
            ids.append(project.db[TABLE].insert({
                "run_id": result.model, "audio_path": audio, "start": cycle.start, "end": cycle.end,
                "probabilities": json.dumps(cycle.probabilities), "label": label, "created_at": at,
            }).last_pk)
    return ids


def stored_results(project: Project, audio_path: str | Path | None = None, model: str | None = None) -> list[dict]:
    """Stored rows (probabilities parsed, label as a name or "uncertain"), by audio, model and time."""
    where, params = [], []
    if audio_path is not None:
        where.append("audio_path = ?")
        params.append(project.store_path(Path(audio_path)))
    if model is not None:
        where.append("run_id = ?")
        params.append(model)
    sql = f'SELECT * FROM {TABLE}{" WHERE " + " AND ".join(where) if where else ""} ORDER BY audio_path, run_id, start'
    rows = project.query(sql, params)
    for row in rows:
        row["probabilities"] = json.loads(row["probabilities"])
        row["label"] = UNCERTAIN if row["label"] is None else LABELS[row["label"]]
    return rows
