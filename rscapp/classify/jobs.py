"""What the Classify view computes off the GUI thread: loading runs, classifying a list of recordings.

Each recording is classified by :func:`trainer.infer.classify.classify_file`, the function ``rsc classify``
runs, so the view shows exactly what the command line prints. A project recording's cycles are the
project's live cycles (written to a temporary ICBHI label file for the call), so their labels are the
annotations the predictions are compared with. One bad file fails alone: its one-line error goes to its
row and the next file is classified.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from trainer.audio import AudioError
from trainer.interrupts import Cancelled
from trainer.infer.classify import UNCERTAIN, ClassifyError, RecordingResult, classify_file
from trainer.labelfiles import LabelError, export_labels
from trainer.project import Project, ProjectError

log = logging.getLogger(__name__)
# Errors a recording can have that are about that recording alone (the list shows them, the rest go on).
FILE_ERRORS = (ClassifyError, AudioError, LabelError, ProjectError, OSError, ValueError, RuntimeError)


@dataclass
class Item:
    """One recording to classify: a file, or a project recording (then ``recording_id`` is set)."""

    path: Path
    name: str
    recording_id: int | None = None


class FileSignals(QObject):
    """Per-file news from the pool thread; created on the GUI thread, so receivers get queued calls."""

    started = Signal(int)  # item index
    stepped = Signal(int, int)  # item index, batches of cycles done
    classified = Signal(int, object)  # item index, RecordingResult
    failed = Signal(int, str)  # item index, the one-line error


class CountingModel:
    """A model that reports each batch of cycles it classifies (so Cancel and the row's bar act within a file)."""

    def __init__(self, model, on_batch) -> None:
        self.model, self.on_batch, self.batches = model, on_batch, 0

    def __getattr__(self, name):  # prep, classes, identity, version...: the model's own
        return getattr(self.model, name)

    def features(self, waves):
        return self.model.features(waves)

    def logits(self, features):
        out = self.model.logits(features)
        self.batches += 1
        self.on_batch(self.batches)
        return out


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def classify_items(model, items: list[Item], threshold: float, project_path: str | None, signals: FileSignals,
                   progress) -> dict:
    """Classify ``items`` in order; returns ``{"done": n, "failed": n}``. ``progress`` raises Cancelled."""
    counts = {"done": 0, "failed": 0}
    project = Project.open(project_path) if project_path and any(i.recording_id is not None for i in items) else None
    try:
        with tempfile.TemporaryDirectory(prefix="rsc-classify-") as scratch:
            for index, item in enumerate(items):
                progress(index, len(items), item.name)
                signals.started.emit(index)
                counting = CountingModel(model, lambda n, i=index: (progress(i, len(items), item.name),
                                                                    signals.stepped.emit(i, n)))
                try:
                    result = _classify_one(counting, item, threshold, project, Path(scratch))
                except Cancelled:
                    raise
                except FILE_ERRORS as exc:
                    counts["failed"] += 1
                    signals.failed.emit(index, one_line(exc))
                    continue
                except Exception as exc:  # noqa: BLE001 - a surprise in one file must not stop the others
                    log.warning("classifying %s failed", item.path, exc_info=True)
                    counts["failed"] += 1
                    signals.failed.emit(index, f"{item.path}: cannot be classified ({type(exc).__name__}: {one_line(exc)})")
                    continue
                counts["done"] += 1
                signals.classified.emit(index, result)
            progress(len(items), len(items), "done")
    finally:
        if project is not None:
            project.close()
    return counts


def _classify_one(model, item: Item, threshold: float, project: Project | None, scratch: Path) -> RecordingResult:
    if item.recording_id is None:
        return classify_file(model, item.path, threshold)
    if project is None:
        raise ClassifyError(f"{item.name}: no project open to read its cycles from")
    labels = scratch / f"{item.recording_id}.txt"
    if project.cycles(recording_id=item.recording_id):
        export_labels(project, labels, "icbhi", [item.recording_id])
        result = classify_file(model, item.path, threshold, labels=labels)
        result.cycles_from = f"the project's cycles ({project.path.name})"
        return result
    return classify_file(model, item.path, threshold, labels=None)  # no cycles yet: the segmentation's


def relabel(result: RecordingResult, threshold: float) -> int:
    """Label each cycle again for ``threshold`` from its kept probabilities; returns how many changed."""
    changed = 0
    for cycle in result.cycles:
        label = cycle.predicted if cycle.confidence >= threshold else UNCERTAIN
        changed += label != cycle.label
        cycle.label = label
    result.threshold = threshold
    return changed


def load_runs_classifier(project_path: str, run_id: str | None, group: str | None, progress=None):
    """A project's run or group as a classifier, on its own connection (torch is imported only here)."""
    from trainer.train.classifier import runs_classifier

    with Project.open(project_path) as project:
        return runs_classifier(project, run_id=run_id, group=group)
