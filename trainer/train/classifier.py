"""A project's trained runs as a classifier: one run, or a group's finished runs averaged (an ensemble).

The CLI (``rsc classify PROJECT:RUN``) and the app's Classify view both load runs through this; an
exported ONNX model needs neither torch nor this module (:class:`trainer.infer.classify.OnnxModel`).
"""

from __future__ import annotations

import hashlib

from ..infer.classify import ClassifyError, TorchModels
from ..project import Project, file_sha256
from ..runs import DONE, checkpoint_records, list_runs
from ..vocab import LABELS
from .checkpoint import MODEL_FILE, Checkpoint
from .runner import load_run_model


def weights_version(project: Project, run_ids: list[str]) -> str:
    """What identifies the weights that classify: a run's model file's sha256; a group's, the sha256 of
    its members' ids and file hashes (a member added, retrained or dropped makes another version).

    The code version would not do: runs of one commit differ in seed, data and epochs. The sha256 is the
    one the checkpoints table recorded when the file was written (load_run_model has just checked the
    file against it); a run from before those records has its file hashed here.
    """
    hashes = []
    for run_id in run_ids:
        record = checkpoint_records(project, run_id).get(MODEL_FILE)
        hashes.append(record.sha256 if record is not None else file_sha256(Checkpoint(project, run_id).model_path))
    if len(run_ids) == 1:
        return hashes[0]
    lines = "".join(f"{run_id} {digest}\n" for run_id, digest in sorted(zip(run_ids, hashes)))
    return hashlib.sha256(lines.encode()).hexdigest()


def runs_classifier(project: Project, run_id: str | None = None, group: str | None = None) -> TorchModels:
    """The classifier of one run (``run:<id>``) or of a group's finished runs (``group:<name>``)."""
    if (run_id is None) == (group is None):
        raise ValueError("give a run id or a group, not both")
    if group is not None:
        ids = [r.id for r in list_runs(project, group=group, status=DONE)]
        if not ids:
            raise ClassifyError(f"{project.path.name}: group {group!r} has no finished run")
        identity = f"group:{group}"
    else:
        ids, identity = [run_id], f"run:{run_id}"
    models = [load_run_model(project, i) for i in ids]
    return TorchModels(models, identity, LABELS[: models[0].num_classes], weights_version(project, ids))
