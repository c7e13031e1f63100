"""A project's trained runs as a classifier: one run, or a group's finished runs averaged (an ensemble).

The CLI (``rsc classify PROJECT:RUN``) and the app's Classify view both load runs through this; an
exported ONNX model needs neither torch nor this module (:class:`trainer.infer.classify.OnnxModel`).
"""

from __future__ import annotations

from ..infer.classify import ClassifyError, TorchModels
from ..project import Project
from ..runs import DONE, list_runs
from ..vocab import LABELS
from .runner import load_run_model


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
    return TorchModels(models, identity, LABELS[: models[0].num_classes])
