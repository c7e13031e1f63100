"""The specification of a run: every setting that decides its result, and the recipes that fill the gaps.

A run row stores the *resolved* spec (every default filled in), so a run means the same thing after
the defaults here change.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

import torch

from ..distill import MODES, VIEW_MODES, DistillError
from ..distill.presets import apply_preset
from ..features import FeatureError, family_of
from ..project import ProjectError

SELECTIONS = ("last", "val", "test")
SCHEDULERS = ("cosine", "constant")
# Class balance of the training batches: none, the loss weighted by inverse class frequency, or batches
# drawn with probability inverse to the class frequency (with replacement, from the epoch's order stream).
BALANCES = ("none", "loss", "sampler")
# REFERENCE.md section 4. Adam with weight decay 1e-6 and a per-epoch cosine to lr * 1e-3 for both
# families, as in the reference code; transformers train in fp16 autocast on CUDA.
FAMILY_DEFAULTS = {
    "cnn": {"epochs": 200, "batch_size": 128, "lr": 1e-3, "weight_decay": 1e-6, "scheduler": "cosine", "amp": False},
    "transformer": {"epochs": 50, "batch_size": 8, "lr": 5e-5, "weight_decay": 1e-6, "scheduler": "cosine", "amp": True},
}
# Tiny variants are for CPU demos and tests on the synthetic data: a short, plain recipe that learns
# it in about half a minute per run (SpecAugment hides too much of a small set in ten epochs).
TINY_DEFAULTS = {"epochs": 10, "batch_size": 8, "lr": 2e-3, "spec_augment": False}
# The CPU recipe, for low-complexity students (the cpmobile family by default) and, on request, -tiny
# models on real ICBHI-sized data: about 4,100 training cycles with normal 53 %, crackle 27 %, wheeze
# 13 %, both 7 %. Balanced batches so that the rare classes count for the ICBHI score (the mean of
# specificity and sensitivity), SpecAugment against the overfitting that balancing invites, and the
# checkpoint picked on a patient-disjoint validation split, never on test. An epoch of 1,000 cycles took
# cpmobile-s 10.9 s with two threads, 19.7 s with one, on a quiet 2-core machine (benchmarks/bench_train_cpu.py
# --epoch), so 60 epochs of the ~3,300 fitted ICBHI cycles are 35-65 minutes of training there.
CPU_DEFAULTS = {"epochs": 60, "batch_size": 16, "lr": 2e-3, "spec_augment": True, "balance": "sampler",
                "select": "val"}
# A recipe fills what a spec leaves open before the family defaults do. None picks one from the model:
# tiny for -tiny architectures, cpu for the low-complexity families, family (nothing more) otherwise.
RECIPES = {"family": {}, "tiny": TINY_DEFAULTS, "cpu": CPU_DEFAULTS}
LOW_COMPLEXITY_FAMILIES = ("cpmobile",)
# Scoring batches. On a CPU small batches are faster per cycle (the activations of a few cycles stay in
# cache): cnn6-tiny scores 5.5 ms a cycle in batches of 8 and 15.7 ms in batches of 256 on 2 cores.
EVAL_BATCH = {"cuda": {"cnn": 256, "transformer": 32}, "cpu": {"cnn": 8, "transformer": 8}}
# The validation split is the same for every seed of a study, so seeds differ only in what they should.
VAL_SEED = 0
# Seeds are what torch, numpy and the per-epoch streams take without wrapping; more runs than this in one
# request is a typo (1-100000), not a study.
SEED_RANGE = (0, 2**31 - 1)
MAX_SEEDS = 1000


class TrainError(ProjectError):
    """A run that cannot start or continue; the message says why and what to do."""


@dataclass
class TrainSpec:
    """Everything that decides a run's result. ``None`` fields are filled by :meth:`resolved`: first from
    the recipe (``recipe``, else tiny for -tiny models, cpu for the cpmobile family, family otherwise:
    :data:`RECIPES`), then from the model family (:data:`FAMILY_DEFAULTS`); ``select`` ends as last and
    ``balance`` as none where neither says otherwise. The resolved values are what a run stores."""

    arch: str
    seed: int = 1
    group: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    scheduler: str | None = None  # cosine (per epoch to lr * min_lr_ratio) or constant
    min_lr_ratio: float = 1e-3
    optimizer: str = "adam"
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    amp: bool | None = None  # fp16 autocast; only takes effect on CUDA
    pretrained: str | None = None  # a local checkpoint path, or "hub" (explicit opt-in to downloading)
    select: str | None = None  # last (default), val (patient-disjoint split from train), test (reference protocol)
    val_fraction: float = 0.2
    val_seed: int = VAL_SEED
    feature_set: str | None = None  # from the model: cnn, ast, clap
    spec_augment: bool | None = None  # default: on for cnn/ast features, off for clap (BTS, CLAP)
    balance: str | None = None  # none (default), loss or sampler: see BALANCES
    recipe: str | None = None  # family, tiny or cpu: which defaults fill the gaps (None: from the model)
    targets: dict = field(default_factory=lambda: {"kind": "hard"})
    model_args: dict = field(default_factory=dict)
    eval_batch_size: int | None = None
    deterministic: bool = True
    # CPU results depend on the number of threads (reductions split differently). None: the process's
    # count when the run starts, kept in its checkpoint so that a resume computes the same numbers.
    cpu_threads: int | None = None

    @property
    def kind(self) -> str:
        return "student" if self.targets.get("kind") == "soft" else "teacher"

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        # Runs stored before class balancing existed have no key; leaving "none" out keeps a new spec of
        # the same settings equal to theirs (a sweep counts an existing run only when the dicts match).
        if data["balance"] == "none":
            del data["balance"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TrainSpec":
        """A stored (resolved) spec; a key it lacks has the meaning it had when the run was stored."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise TrainError(f"unknown training settings: {', '.join(sorted(unknown))}")
        from ..models.ast import stored_run_model_args

        spec = cls(**{"balance": "none", **data})
        # Likewise for model settings: an AST run stored before pos_embed existed resampled its positions.
        spec.model_args = stored_run_model_args(spec.arch, spec.model_args)
        return spec

    def resolved(self) -> "TrainSpec":
        """A copy with every default filled in and every value checked."""
        from ..models.ast import new_run_model_args

        spec = dataclasses.replace(self, targets=dict(self.targets), model_args=dict(self.model_args))
        _fill_defaults(spec)
        spec.model_args = new_run_model_args(spec.arch, spec.model_args)  # written out: a default may change
        _check_values(spec)
        spec.targets = _resolved_targets(spec.targets)
        return spec


def _fill_defaults(spec: TrainSpec) -> None:
    if spec.targets.get("mode") in VIEW_MODES:
        # A CED student sees the very views its teachers saw; a second augmentation on top would not be them.
        if spec.spec_augment:
            raise TrainError("--mode ced replays the teachers' augmented views; leave SpecAugment off")
        spec.spec_augment = False
    if spec.feature_set is None:
        spec.feature_set = model_feature_set(spec.arch, spec.model_args)
    try:
        family = family_of(spec.feature_set)
    except FeatureError as exc:
        raise TrainError(str(exc)) from None
    recipe = spec.recipe or default_recipe(spec.arch)
    if recipe not in RECIPES:
        raise TrainError(f"unknown recipe {recipe!r} (expected one of {', '.join(RECIPES)})")
    for key, value in (*RECIPES[recipe].items(), *FAMILY_DEFAULTS[family].items()):
        if getattr(spec, key) is None:
            setattr(spec, key, value)
    if spec.select is None:
        spec.select = "last"
    if spec.balance is None:
        spec.balance = "none"
    if spec.spec_augment is None:
        spec.spec_augment = spec.feature_set != "clap"
    if spec.group is None:
        spec.group = spec.arch
    if spec.device == "auto":
        spec.device = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.eval_batch_size is None:
        on_cpu = spec.device == "cpu"
        size = EVAL_BATCH["cpu" if on_cpu else "cuda"][family]
        spec.eval_batch_size = size if on_cpu else max(size, spec.batch_size)
    spec.seed = int(spec.seed)
    spec.epochs, spec.batch_size = int(spec.epochs), int(spec.batch_size)
    spec.lr, spec.weight_decay = float(spec.lr), float(spec.weight_decay)


def _check_values(spec: TrainSpec) -> None:
    if not SEED_RANGE[0] <= spec.seed <= SEED_RANGE[1]:
        raise TrainError(f"seed {spec.seed} is outside {SEED_RANGE[0]}..{SEED_RANGE[1]}")
    if spec.epochs < 1:
        raise TrainError(f"epochs must be at least 1, got {spec.epochs}")
    if spec.batch_size < 2:
        raise TrainError(f"batch size must be at least 2 (batch norm needs two samples), got {spec.batch_size}")
    if not spec.lr > 0:
        raise TrainError(f"learning rate must be positive, got {spec.lr}")
    if spec.weight_decay < 0:
        raise TrainError(f"weight decay must be >= 0, got {spec.weight_decay}")
    if spec.balance not in BALANCES:
        raise TrainError(f"unknown class balance {spec.balance!r} (expected one of {', '.join(BALANCES)})")
    if spec.select not in SELECTIONS:
        raise TrainError(f"unknown checkpoint selection {spec.select!r} (expected one of {', '.join(SELECTIONS)})")
    if spec.scheduler not in SCHEDULERS:
        raise TrainError(f"unknown scheduler {spec.scheduler!r} (expected one of {', '.join(SCHEDULERS)})")
    if spec.optimizer != "adam":
        raise TrainError(f"unknown optimizer {spec.optimizer!r} (only adam is available)")
    if not 0.0 < spec.val_fraction < 1.0:
        raise TrainError(f"validation fraction must lie between 0 and 1, got {spec.val_fraction}")
    if not (spec.device == "cpu" or re.fullmatch(r"cuda(:\d+)?", spec.device)):
        raise TrainError(f"unknown device {spec.device!r} (expected cpu, cuda or cuda:N)")


TARGET_KEYS = {"kind", "teachers", "mode", "k", "temperature", "hard_weight", "noise_var", "teacher_group", "preset",
               "feature", "passes", "views"}


def _resolved_targets(targets: dict) -> dict:
    kind = targets.get("kind")
    if kind == "hard":
        return {"kind": "hard"}
    if kind == "collab":  # one model of a multi-representation job (trainer.train.collab)
        return {"kind": "collab", "peers": list(targets.get("peers") or []),
                "peer_weight": float(targets.get("peer_weight", 1.0)),
                "temperature": float(targets.get("temperature", 1.0)),
                "representation": targets.get("representation"),
                **({"job_group": targets["job_group"]} if targets.get("job_group") else {})}
    if kind != "soft":
        raise TrainError(f"targets must be {{'kind': 'hard'}} or {{'kind': 'soft', ...}}, got {targets!r}")
    unknown = set(targets) - TARGET_KEYS
    if unknown:  # a setting dropped here would train another student than the one asked for, silently
        raise TrainError(f"unknown soft-label settings: {', '.join(sorted(unknown))} (known: {', '.join(sorted(TARGET_KEYS))})")
    try:  # before any default: a preset plus an explicit different value is refused
        targets = apply_preset(targets)
    except DistillError as exc:
        raise TrainError(str(exc)) from None
    teachers = list(targets.get("teachers") or [])
    if not teachers and targets.get("mode") != "noise-const":
        raise TrainError(f"{targets.get('mode', 'mean')} targets need at least one teacher run")
    resolved = {
        "kind": "soft",
        "teachers": teachers,
        "mode": targets.get("mode", "mean"),
        "k": int(targets.get("k") or len(teachers)),
        "temperature": float(targets.get("temperature", 1.0)),
        "hard_weight": float(targets.get("hard_weight", 0.0)),
        "noise_var": float(targets.get("noise_var", 0.1)),
        **({"teacher_group": targets["teacher_group"]} if targets.get("teacher_group") else {}),
        **({"preset": targets["preset"]} if targets.get("preset") else {}),
    }
    if targets.get("feature") is not None:  # joint feature + output KD (seed paper 004)
        from .feature_kd import resolve_feature_settings

        resolved["feature"] = resolve_feature_settings(targets["feature"], teachers)
    if resolved["mode"] not in MODES or resolved["mode"] == "hard":
        raise TrainError(f"unknown distillation mode {resolved['mode']!r}")
    if resolved["mode"] in VIEW_MODES:
        if resolved.get("feature"):
            raise TrainError("feature distillation learns from the teachers' maps on the plain cycles; it does not "
                             "combine with --mode ced")
        if not targets.get("passes"):
            raise TrainError("--mode ced needs the teachers' stored views: run `rsc logits` and name them (passes)")
        resolved["passes"] = str(targets["passes"])
        if targets.get("views"):  # how to make the views if they are not stored yet
            views = dict(targets["views"])
            resolved["views"] = {"count": int(views["count"]), "seed": int(views.get("seed", 0))}
    return resolved


def default_recipe(arch: str) -> str:
    """The recipe a spec without one gets: tiny for -tiny models, cpu for low-complexity families."""
    from ..models import ModelError, model_entry

    if arch.endswith("-tiny"):
        return "tiny"
    try:
        family = model_entry(arch).family
    except ModelError as exc:
        raise TrainError(str(exc)) from None
    return "cpu" if family in LOW_COMPLEXITY_FAMILIES else "family"


def model_feature_set(arch: str, model_args: dict | None = None) -> str:
    """The input features an architecture reads (cnn, ast or clap), from the model registry, unless
    ``model_args["feature_set"]`` asks the model to read another set (cnn6 on stft or mfcc)."""
    from ..models import ModelError, model_entry

    if model_args and model_args.get("feature_set"):
        return str(model_args["feature_set"])

    try:
        return model_entry(arch).feature_set
    except ModelError as exc:
        raise TrainError(str(exc)) from None


def parse_seeds(text: str) -> list[int]:
    """'1-5' -> [1..5]; '1,3,5' -> [1, 3, 5]; '2' -> [2]; mixes like '1-3,7' work too (see :func:`check_seeds`)."""
    seeds: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"bad seeds {text!r}: expected e.g. 1-5 or 1,3,5 (seeds from {SEED_RANGE[0]} up)")
        first, last = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if last < first:
            raise ValueError(f"bad seed range {part!r}: {last} is below {first}")
        if len(seeds) + last - first + 1 > MAX_SEEDS:  # before the list is built: 1-10000000000 is refused at once
            raise ValueError(f"{text!r} asks for more than {MAX_SEEDS} runs; ask for at most {MAX_SEEDS} at a time")
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise ValueError(f"no seeds in {text!r}")
    return check_seeds(seeds, text)


def check_seeds(seeds: list[int], text: str | None = None) -> list[int]:
    """Seeds of one request: at most MAX_SEEDS, each within SEED_RANGE, none twice; returns them."""
    shown = repr(text) if text is not None else "the seeds"
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"{shown} asks for {len(seeds)} runs; ask for at most {MAX_SEEDS} at a time")
    outside = [s for s in seeds if not SEED_RANGE[0] <= s <= SEED_RANGE[1]]
    if outside:
        raise ValueError(f"seed {outside[0]} in {shown} is outside {SEED_RANGE[0]}..{SEED_RANGE[1]}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seed listed twice in {shown}")
    return seeds
