"""What a run trains on: its cycles, their features in memory, the validation split, teacher targets.

Features are computed once (cached by ``trainer.features``) and held in memory, on the GPU when
training there, so a batch is one tensor index and the step has no per-sample Python and no
DataLoader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .. import runs
from ..distill import TargetProvider
from ..features import load_features
from ..project import Project
from .spec import VAL_SEED, TrainError, TrainSpec


def training_cycles(project: Project) -> tuple[list[dict], list[dict]]:
    """Live train and test cycles whose audio is present, in the project's stable order."""
    return project.cycles(split="train", with_audio=True), project.cycles(split="test", with_audio=True)


def patient_disjoint_split(rows: list[dict], fraction: float, seed: int = VAL_SEED,
                           owner: str = "the run") -> tuple[np.ndarray, np.ndarray]:
    """Positions (train, val) in ``rows`` with no patient on both sides; val holds about ``fraction``.

    A recording without a patient counts as its own patient. Patients are shuffled with ``seed`` and
    taken until the validation part reaches the fraction of cycles. A validation part without normal
    or without abnormal cycles is refused (:func:`check_val_classes`); ``owner`` names the run there.
    """
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        key = f"patient:{row['patient_id']}" if row.get("patient_id") else f"recording:{row['recording_id']}"
        groups.setdefault(key, []).append(i)
    if len(groups) < 2:
        raise TrainError("a validation split needs cycles from at least two patients in the training split")
    names = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(names))
    target = fraction * len(rows)
    val: list[int] = []
    patients = 0
    for j in order:
        if len(val) >= target:
            break
        if len(val) + len(groups[names[j]]) >= len(rows):
            continue  # never take every training cycle
        val.extend(groups[names[j]])
        patients += 1
    val_set = set(val)
    train_pos = np.array([i for i in range(len(rows)) if i not in val_set], dtype=np.int64)
    val_pos = np.array(sorted(val), dtype=np.int64)
    check_val_classes(rows, val_pos, owner, fraction, seed, patients)
    return train_pos, val_pos


def check_val_classes(rows: list[dict], val_pos: np.ndarray, owner: str, fraction: float, seed: int,
                      patients: int) -> None:
    """A validation split must hold normal and abnormal cycles: without one of them its Sp or Se, and so
    its Score, is undefined (the published metric code would give 0) and select=val picks no real epoch."""
    labels = [int(rows[i]["label"]) for i in val_pos]
    normal = sum(1 for label in labels if label == 0)
    abnormal = len(labels) - normal
    if normal and abnormal:
        return
    lacking = "abnormal (crackle, wheeze or both)" if normal else "normal"
    raise TrainError(
        f"{owner}: its validation split ({len(labels)} cycles of {patients} patients: {normal} normal, {abnormal} "
        f"abnormal; {len(rows) - len(labels)} cycles left to fit) has no {lacking} cycles, so its "
        f"{'Se' if normal else 'Sp'} and Score are undefined and select=val cannot pick an epoch; raise val_fraction "
        f"(now {fraction:g}), try another val_seed (now {seed}), or use select=last"
    )


@dataclass
class TrainData:
    """The cycles of one run in memory. ``x_all``/``y_all`` are the training split (fit and validation
    positions index into them), ``x_test``/``y_test`` the test split; ``text_*`` are tokenized prompts
    for models that read text (else None)."""

    train_rows: list[dict]
    test_rows: list[dict]
    x_all: torch.Tensor
    x_test: torch.Tensor
    y_all: torch.Tensor
    y_test: torch.Tensor
    fit_pos: torch.Tensor
    val_pos: torch.Tensor
    text_all: object = None
    text_test: object = None

    @property
    def val_ids(self) -> list[int]:
        return [self.train_rows[i]["id"] for i in self.val_pos.tolist()]

    @property
    def cycle_ids(self) -> list[int]:
        """Every cycle the run gives logits for: training split first, then test."""
        return [r["id"] for r in self.train_rows] + [r["id"] for r in self.test_rows]


def load_data(
    project: Project, spec: TrainSpec, train_rows: list[dict], test_rows: list[dict], device: torch.device,
    progress: Callable[[int, int], None] | None = None,
) -> TrainData:
    if not train_rows or not test_rows:
        raise TrainError(f"{project.path.name}: training needs train and test cycles with audio")
    x = torch.as_tensor(load_features(project, spec.feature_set, train_rows + test_rows, progress=progress))
    if spec.select == "val":
        fit_pos, val_pos = patient_disjoint_split(train_rows, spec.val_fraction, spec.val_seed,
                                                  owner=f"run {spec.group} seed {spec.seed}")
    else:
        fit_pos, val_pos = np.arange(len(train_rows)), np.zeros(0, dtype=np.int64)
    # Copies out of the memory-mapped cache, on the GPU when training there.
    return TrainData(
        train_rows, test_rows,
        x_all=x[: len(train_rows)].to(device, copy=True),
        x_test=x[len(train_rows) :].to(device, copy=True),
        y_all=torch.tensor([r["label"] for r in train_rows], dtype=torch.long),
        y_test=torch.tensor([r["label"] for r in test_rows], dtype=torch.long),
        fit_pos=torch.from_numpy(fit_pos), val_pos=torch.from_numpy(val_pos),
    )


def check_teachers(project: Project, teachers: list[str]) -> None:
    for teacher in teachers:
        if not runs.run_exists(project, teacher):
            raise TrainError(f"teacher run {teacher!r} does not exist in {project.path.name}")
        status = runs.status_of(project, teacher)
        if status not in runs.FINISHED:
            raise TrainError(f"teacher run {teacher} is {status}, not done; finish it first")


def teacher_targets(project: Project, spec: TrainSpec, data: TrainData) -> TargetProvider:
    """A student's soft targets, from its teachers' stored logits on the cycles it fits."""
    targets = spec.targets
    check_teachers(project, targets["teachers"])
    fit_ids = [data.train_rows[i]["id"] for i in data.fit_pos.tolist()]
    logits = runs.load_logits(project, targets["teachers"], fit_ids) if targets["teachers"] else None
    return TargetProvider(
        logits, data.y_all[data.fit_pos].numpy(), targets["mode"], seed=spec.seed,
        noise_var=targets["noise_var"], temperature=targets["temperature"],
    )


def add_text_inputs(project: Project, model, data: TrainData) -> None:
    """Tokenized prompts (recording and patient metadata) for a model that reads text, such as BTS."""
    if not getattr(model, "needs_text", False):
        return
    from ..models import bts_prompt

    cache: dict[int, str] = {}

    def prompts(rows: list[dict]) -> list[str]:
        out = []
        for row in rows:
            if row["recording_id"] not in cache:
                rec = project.recording(row["recording_id"])
                patient = project.patient(rec["patient_id"]) if rec.get("patient_id") else None
                cache[row["recording_id"]] = bts_prompt(rec, patient)
            out.append(cache[row["recording_id"]])
        return out

    data.text_all = model.tokenize(prompts(data.train_rows))
    data.text_test = model.tokenize(prompts(data.test_rows))


def text_rows(text, index: torch.Tensor, device: torch.device):
    """The rows ``index`` of tokenized text (a tensor or a dict of tensors), on ``device``."""
    if text is None:
        return None
    if isinstance(text, torch.Tensor):
        return text[index.to(text.device)].to(device)
    return {k: v[index.to(v.device)].to(device) for k, v in text.items()}
