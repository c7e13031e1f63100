"""What is checked before a run's row is written: a setup that cannot train leaves no run behind.

The model is built once with the run's pretrained weights and settings (a pickle, another
architecture's checkpoint, a missing path or a bad ``--model-arg`` is refused here, in one line), the
cycles must have a training and a test split (and a validation split where the run asks for one), and
a student's teachers must have stored logits for every cycle it fits. A run trained at once must also
find its device and its audio, unchanged (a queued run is checked by the worker that takes it).
"""

from __future__ import annotations

import functools
import json
import os

import torch

from .. import runs
from ..project import Project
from .cycles import RunCycles
from .data import patient_disjoint_split
from .spec import TrainError, TrainSpec

# What building a model from a user's settings raises for settings it cannot take.
BUILD_ERRORS = (ValueError, TypeError, ArithmeticError, OSError, RuntimeError)


def check_model(spec: TrainSpec) -> None:
    """Build the run's model once (per settings and weights file) and confirm the features it reads."""
    pretrained = spec.pretrained
    stamp = None
    if pretrained and pretrained != "hub":
        try:
            info = os.stat(pretrained)
            stamp = (info.st_mtime_ns, info.st_size)
        except OSError:
            stamp = None  # the factory names the missing path
    feature_set = _built_feature_set(spec.arch, pretrained, json.dumps(spec.model_args, sort_keys=True), stamp)
    if feature_set != spec.feature_set:
        raise TrainError(f"{spec.arch} reads {feature_set} features, the run says {spec.feature_set}")


@functools.lru_cache(maxsize=16)
def _built_feature_set(arch: str, pretrained: str | None, model_args: str, stamp: tuple | None) -> str:
    from ..models import ModelError, create_model

    settings = json.loads(model_args)
    try:
        with torch.random.fork_rng(devices=[]):  # building draws initial weights: the caller's stream is left as it was
            model = create_model(arch, num_classes=4, pretrained=pretrained, **settings)
    except ModelError as exc:
        raise TrainError(str(exc)) from None
    except BUILD_ERRORS as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in settings.items()) or "its defaults"
        raise TrainError(f"{arch} cannot be built with {shown}: {type(exc).__name__}: {exc}") from None
    return model.feature_set


def check_device(spec: TrainSpec) -> None:
    """A run trained here and now must find its device (a queued one may run on another machine)."""
    if spec.device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainError(f"{spec.arch} seed {spec.seed} asks for {spec.device} but this machine has no CUDA device "
                         "(use --device cpu, or --queue it for a worker on a machine with one)")


def check_audio(project: Project, cycles: RunCycles) -> None:
    """Every recording of the cycles still has its audio, unchanged (the cheap check ``rsc check`` makes)."""
    faults = []
    for recording_id in dict.fromkeys(row["recording_id"] for row in cycles.train + cycles.test):
        rec = project.recording(recording_id)
        verdict = project.examine_audio(rec)
        if verdict.status != "ok":
            faults.append(f"{rec['name']} ({verdict.status}: {verdict.reason}; {project.audio_path(rec)})")
    if faults:
        shown = "; ".join(faults[:8]) + (f"; and {len(faults) - 8} more" if len(faults) > 8 else "")
        raise TrainError(
            f"{project.path.name}: the audio of {len(faults)} recording(s) is not where it was, or changed: {shown}. "
            "Restore or relocate the files (`rsc check` names each one; the app's Library relocates them), or "
            "train a new group, whose cycle set leaves out recordings without audio"
        )


def check_cycles(project: Project, spec: TrainSpec, cycles: RunCycles) -> None:
    """Train and test cycles, a validation split where asked for, and teachers' logits on the fitted cycles."""
    if not cycles.train:
        raise TrainError(f"{project.path.name}: no training cycles with audio (import data first)")
    if not cycles.test:
        raise TrainError(f"{project.path.name}: no test cycles with audio; a run is scored on the test split "
                         "(give some recordings split 'test' and import again)")
    fit = cycles.train
    if spec.select == "val":
        fit_pos, _ = patient_disjoint_split(cycles.train, spec.val_fraction, spec.val_seed,
                                            owner=f"{project.path.name}: run {spec.group} seed {spec.seed}")
        fit = [cycles.train[i] for i in fit_pos]
    if spec.kind != "student":
        return
    wanted = {row["id"] for row in fit}
    for teacher in spec.targets["teachers"]:
        missing = wanted - set(runs.run_cycle_ids(project, teacher))
        if missing:
            shown = ", ".join(str(c) for c in sorted(missing)[:5]) + (", ..." if len(missing) > 5 else "")
            raise TrainError(
                f"teacher run {teacher} has no stored logits for {len(missing)} of the {len(wanted)} cycles the "
                f"student would fit (cycles {shown}: added after it trained?); distil from teachers trained on "
                "these cycles"
            )
