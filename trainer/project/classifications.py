"""The ``classifications`` table: what a model said of each cycle of a classified recording.

One row per cycle: the model's identity (``model``: ``onnx:<run or architecture>@<sha256 prefix>``,
``run:<id>`` or ``group:<name>``) and the version of its weights (``model_version``: the ONNX file's
sha256, a run's model-file sha256, a group's hash of its members' ones), where the row came from
(``origin``: ``model``), the audio path as the project stores paths, the project recording whose audio
it is (``recording_id``, NULL for a file outside the project), the span, the probabilities (JSON,
class -> p), the label (class number; NULL when the cycle was uncertain), the threshold and the time.

Storing a recording again with the same model and version replaces its rows, in one transaction; a
different version of the same model keeps both, so a retrained or re-exported model can be compared.

The results are taken duck-typed (``path``, ``model``, ``version``, ``threshold``, ``cycles`` with
``start``, ``end``, ``probabilities``, ``label``): this layer does not import :mod:`trainer.infer`.
Rows made before schema version 5 keep ``run_id`` (the identity, copied into ``model``; SQLite would
rebuild the table to drop it) and have no version or threshold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..vocab import LABELS
from .errors import ProjectError
from .store import now

if TYPE_CHECKING:
    from . import Project

TABLE = "classifications"
ORIGIN_MODEL = "model"
# The word trainer.infer.classify gives a cycle below the threshold (a test keeps the two equal).
UNCERTAIN = "uncertain"


def _recording_of(project: Project, audio: str, recording_id: int | None) -> int | None:
    if recording_id is not None:
        if project.db.execute("SELECT 1 FROM recordings WHERE id = ?", [recording_id]).fetchone() is None:
            raise ProjectError(f"{project.path.name}: no recording {recording_id} to store classifications for")
        return recording_id
    row = project.db.execute("SELECT id FROM recordings WHERE path = ? ORDER BY id LIMIT 1", [audio]).fetchone()
    return row[0] if row else None


def _label_number(path: str, label: str) -> int | None:
    if label == UNCERTAIN:
        return None
    if label not in LABELS:
        raise ProjectError(f"{path}: label {label!r} is not one of {', '.join(LABELS)} or {UNCERTAIN}")
    return LABELS.index(label)


def store_classification(project: Project, result: Any, recording_id: int | None = None) -> list[int]:
    """Store one recording's result, replacing the rows the same model and version gave it; the row ids.

    Without ``recording_id`` the recording is the project's one whose stored path is the result's audio
    (None when the file is not a project recording).
    """
    audio = project.store_path(Path(result.path))
    version = getattr(result, "version", None) or None
    at = now()
    with project.transaction():
        recording = _recording_of(project, audio, recording_id)
        project.db.execute(
            f"DELETE FROM {TABLE} WHERE model = ? AND model_version IS ? AND (audio_path = ? OR recording_id = ?)",
            [result.model, version, audio, recording],
        )
        ids = []
        for cycle in result.cycles:
            ids.append(project.db[TABLE].insert({
                "model": result.model, "model_version": version, "origin": ORIGIN_MODEL, "audio_path": audio,
                "recording_id": recording, "start": float(cycle.start), "end": float(cycle.end),
                "probabilities": json.dumps(cycle.probabilities), "label": _label_number(result.path, cycle.label),
                "threshold": float(result.threshold), "created_at": at,
            }).last_pk)
    return ids


def stored_classifications(project: Project, audio_path: str | Path | None = None, model: str | None = None,
                           recording_id: int | None = None) -> list[dict]:
    """Stored rows (probabilities parsed, label as a name or "uncertain"), by audio, model, version and time."""
    where, params = [], []
    if audio_path is not None:
        where.append("audio_path = ?")
        params.append(project.store_path(Path(audio_path)))
    if model is not None:
        where.append("model = ?")
        params.append(model)
    if recording_id is not None:
        where.append("recording_id = ?")
        params.append(recording_id)
    sql = (f"SELECT id, model, model_version, origin, audio_path, recording_id, start, \"end\", probabilities, label, "
           f"threshold, created_at FROM {TABLE}{' WHERE ' + ' AND '.join(where) if where else ''} "
           "ORDER BY audio_path, model, model_version, start, id")
    rows = project.query(sql, params)
    for row in rows:
        row["probabilities"] = json.loads(row["probabilities"]) if row["probabilities"] else {}
        row["label"] = UNCERTAIN if row["label"] is None else LABELS[row["label"]]
    return rows
