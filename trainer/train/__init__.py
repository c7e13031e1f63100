"""Training, in rooms (as timm and Lightning split it):

* ``spec``: :class:`TrainSpec`, the family and tiny recipes, validation, seed lists;
* ``provenance``: the code version and the fingerprint of the data a run saw;
* ``data``: the cycles of a run in memory, the patient-disjoint validation split, teacher targets;
* ``tasks``: a hard-label and a soft-label task, each ``forward(model, batch) -> (loss, logits)``;
* ``loop``: epochs, batches, the learning-rate schedule, scoring and checkpoint selection;
* ``hooks``: live progress (``runs.progress``), cancel polling, ETA;
* ``cycles``: the cycle set a run trains and is scored on (its group's, fixed when the group is submitted);
* ``checks``: what is checked before a run's row is written (model, weights, splits, teachers' logits);
* ``checkpoint``: the one owner of resume state and of the runs' safetensors files, verified by checksum;
* ``determinism``: per-epoch random streams, deterministic kernels, CPU threads;
* ``stacked``: k models of one architecture in one batched step;
* ``runner``: creating, training, resuming a run and loading its final model.
"""

from .checkpoint import checkpoint_dir, load_weights
from .data import patient_disjoint_split, training_cycles
from .hooks import RunStopped
from .provenance import code_version, data_fingerprint
from .runner import create_run, load_run_model, resume, run_training
from .spec import (
    FAMILY_DEFAULTS, MAX_SEEDS, SCHEDULERS, SEED_RANGE, SELECTIONS, TINY_DEFAULTS, TrainError, TrainSpec, check_seeds,
    parse_seeds,
)

__all__ = [
    "FAMILY_DEFAULTS", "MAX_SEEDS", "SCHEDULERS", "SEED_RANGE", "SELECTIONS", "TINY_DEFAULTS", "RunStopped", "TrainError",
    "TrainSpec", "check_seeds", "checkpoint_dir", "code_version", "create_run", "data_fingerprint", "load_run_model",
    "load_weights", "parse_seeds", "patient_disjoint_split", "resume", "run_training", "training_cycles",
]
