"""Job specifications from a user's choices: the one place that turns what someone chose (the options of
``rsc train``, ``rsc distill`` and ``rsc sweep``, or the fields of the app's dialogs, which are the same
choices) into :class:`~trainer.train.TrainSpec` lists, so that a job made in the app and one made in a
terminal are the same job.

    choices = TrainChoices(arch="cnn6", seeds="1-5", epochs=50)
    specs = teacher_specs(choices)                                   # rsc train
    jobs = student_jobs(project, choices, DistillChoices("cnn6"))    # rsc distill: teachers picked here
    plan = sweep_plan(project, choices, DistillChoices("cnn6"), ks="0,1,3")  # rsc sweep
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Sequence

from ..distill import VIEW_MODES, DistillError, select_teachers, selection_for_mode
from ..project import Project, ProjectError
from ..results import SweepError, SweepPlan, plan_sweep
from ..train import TrainError, TrainSpec, check_seeds, parse_seeds


class SpecError(ProjectError):
    """Choices that make no job (bad seeds, a bad model setting, unknown teachers); one line says why."""


@dataclass
class TrainChoices:
    """The settings of a training job as a user gives them; None: the model family's default."""

    arch: str
    seeds: str | Sequence[int] = "1"  # "1-5", "1,3,5", or the numbers
    group: str | None = None  # the group (a sweep: the prefix of its per-k groups)
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    scheduler: str | None = None
    device: str = "auto"
    amp: bool | None = None
    pretrained: str | None = None
    select: str | None = None  # None: the recipe's (val for the CPU recipe), else last
    val_fraction: float = 0.2
    spec_augment: bool | None = None
    model_args: Sequence[str] = field(default_factory=list)  # KEY=VALUE items, as `--model-arg` takes them
    balance: str | None = None  # none, loss or sampler (None: the recipe's)
    recipe: str | None = None  # family, tiny or cpu (None: from the model)

    def seed_list(self) -> list[int]:
        if not isinstance(self.seeds, str):
            try:
                return check_seeds([int(seed) for seed in self.seeds])
            except ValueError as exc:
                raise SpecError(str(exc)) from None
        try:
            return parse_seeds(self.seeds)
        except ValueError as exc:
            raise SpecError(str(exc)) from None

    def spec(self, seed: int, targets: dict | None = None) -> TrainSpec:
        return TrainSpec(model_args=parse_model_args(self.model_args),
            arch=self.arch, seed=seed, group=self.group, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            weight_decay=self.weight_decay, scheduler=self.scheduler, device=self.device, amp=self.amp,
            pretrained=self.pretrained, select=self.select, val_fraction=self.val_fraction,
            spec_augment=self.spec_augment, targets=targets or {"kind": "hard"}, balance=self.balance,
            recipe=self.recipe,
        )

    def settings(self) -> dict:
        """The TrainSpec fields these choices set apart from what a sweep decides (arch, seed, group, targets)."""
        settings = self.spec(seed=1).to_dict()
        for key in ("arch", "seed", "group", "targets"):
            settings.pop(key, None)
        return settings


@dataclass
class DistillChoices:
    """Where a student's soft labels come from."""

    teachers: str  # the group of finished teacher runs
    mode: str = "mean"
    k: int | None = None  # None: every finished run of the group
    temperature: float | None = None  # None: the preset's, else 1
    hard_weight: float | None = None  # None: the preset's, else 0
    noise_var: float = 0.1
    preset: str | None = None  # a published loss weighting (trainer.distill.presets: efficientat, cp-jku)
    feature: dict | None = None  # joint feature + output KD: teacher, teacher_layer, student_layer, weight
    passes: int = 4  # ced: the stored views per cycle (`rsc logits --passes`)
    view_seed: int = 0  # ced: the seed of those views (`rsc logits --view-seed`)

    @property
    def label(self) -> str:
        """The method in a default group name: the mode, the preset, -fkd with feature distillation."""
        return self.mode + (f"-{self.preset}" if self.preset else "") + ("-fkd" if self.feature else "")


# The representations a collaborative job offers (seed paper 002): log-mel, linear-frequency STFT, MFCC.
COLLAB_SETS = ("cnn", "stft", "mfcc")


@dataclass
class CollabChoices:
    """A multi-representation collaborative job: one model per feature set, each learning from its peers."""

    representations: Sequence[str] = COLLAB_SETS
    peer_weight: float = 1.0  # w of the KL-to-peers term
    temperature: float = 1.0


@dataclass
class CollabJobs:
    group: str  # each run's group is <group>-<feature set>
    jobs: list[list[TrainSpec]]  # one lockstep job per seed, a spec per representation
    collab: CollabChoices

    def __len__(self) -> int:
        return sum(len(job) for job in self.jobs)


@dataclass
class StudentJobs:
    teachers: list[str]  # run ids, in the order the targets use them
    selection: str  # first, curated or single
    group: str
    specs: list[TrainSpec]


def parse_model_args(items: Sequence[str], option: str = "--model-arg") -> dict:
    """KEY=VALUE pairs; a value is JSON where it parses, a comma list of numbers, or else text."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"{option} {item!r}: expected KEY=VALUE")
        try:
            value = json.loads(text)
        except ValueError:
            parts = text.split(",")
            try:
                value = [json.loads(p) for p in parts] if len(parts) > 1 else text
            except ValueError:
                value = text
        out[key.strip().replace("-", "_")] = value
    return out


def check_specs(specs: Sequence[TrainSpec]) -> None:
    """Every spec's settings checked before the first job is stored or started."""
    try:
        for spec in specs:
            spec.resolved()
    except TrainError as exc:
        raise SpecError(str(exc)) from None


def teacher_specs(choices: TrainChoices) -> list[TrainSpec]:
    """One hard-label run per seed (``rsc train``)."""
    return [choices.spec(seed) for seed in choices.seed_list()]


def default_student_group(arch: str, mode: str, k: int, teachers_group: str) -> str:
    return f"{arch}-{mode}-k{k}-from-{teachers_group}"


def student_jobs(project: Project, choices: TrainChoices, distill: DistillChoices) -> StudentJobs:
    """One soft-label run per seed from the chosen teachers of a group (``rsc distill``).

    The teachers are chosen now (the first k by seed, the k best for ``curated``, one for ``single``)
    and named in every spec, so a teacher finished later never changes what a queued student learns from.
    """
    seeds = choices.seed_list()
    selection = selection_for_mode(distill.mode)
    try:
        if distill.mode == "noise-const":
            teachers = []  # labels plus noise: no teacher is read
        elif distill.mode in VIEW_MODES:
            teachers, passes = _view_teachers(project, distill)
        else:
            teachers = select_teachers(project, distill.teachers, distill.k, selection)
    except DistillError as exc:
        raise SpecError(str(exc)) from None
    group = choices.group or default_student_group(choices.arch, distill.label, len(teachers), distill.teachers)
    named = dataclasses.replace(choices, group=group)
    targets = {
        "kind": "soft", "teachers": teachers, "teacher_group": distill.teachers, "mode": distill.mode,
        "k": len(teachers), "noise_var": distill.noise_var,
        **{key: value for key, value in (("temperature", distill.temperature), ("hard_weight", distill.hard_weight),
                                         ("preset", distill.preset), ("feature", distill.feature)) if value is not None},
        **({"passes": passes, "views": {"count": distill.passes, "seed": distill.view_seed}}
           if distill.mode in VIEW_MODES else {}),
    }
    return StudentJobs(teachers, selection, group, [named.spec(seed, targets) for seed in seeds])


def _view_teachers(project: Project, distill: DistillChoices) -> tuple[list[str], str]:
    """The teachers of the views a CED student learns from, and the views' name.

    Views not stored yet are made by the first student that trains (the teachers are every finished
    run of the group now, named in the spec, so the views are of exactly these teachers); stored ones
    that cannot be read are refused, never made again over a file someone may want to look at.
    """
    from ..distill.ced import load_passes, passes_path
    from ..train.logit_passes import passes_name

    name = passes_name(distill.teachers, distill.passes, distill.view_seed)
    path = passes_path(project.artifacts, name)
    if distill.passes < 1:
        raise SpecError(f"the views per cycle must be at least 1, got {distill.passes}")
    if not path.exists():
        teachers = select_teachers(project, distill.teachers, None, "first")
        if distill.k is not None and distill.k != len(teachers):
            raise SpecError(f"the views are made of all {len(teachers)} finished teachers of {distill.teachers}; "
                            "--k cannot change that")
        return teachers, name
    try:
        passes = load_passes(path)
    except DistillError as exc:
        raise SpecError(f"{exc} (make them again with: rsc logits {project.path.name} --teachers {distill.teachers} "
                        f"--passes {distill.passes}{f' --view-seed {distill.view_seed}' if distill.view_seed else ''})") from None
    if distill.k is not None and distill.k != len(passes.meta["teachers"]):
        raise SpecError(f"the stored views {name} are of all {len(passes.meta['teachers'])} teachers; --k cannot change that")
    return list(passes.meta["teachers"]), name


def view_status(project: Project, distill: DistillChoices) -> str:
    """One line on the views a CED student would learn from: stored, or made by the first student."""
    from ..distill.ced import load_passes, passes_path
    from ..train.data import training_cycles
    from ..train.logit_passes import passes_name

    if distill.mode not in VIEW_MODES or not distill.teachers:
        return ""
    name = passes_name(distill.teachers, distill.passes, distill.view_seed)
    path = passes_path(project.artifacts, name)
    if path.exists():
        try:
            passes = load_passes(path)
        except DistillError as exc:
            return f"Cannot be read: {exc}"
        return (f"Stored: {passes.passes} views of {len(passes.cycle_ids)} cycles by "
                f"{_teachers(len(passes.meta['teachers']))} ({name})")
    try:
        teachers = select_teachers(project, distill.teachers, None, "first")
    except DistillError as exc:
        return str(exc)
    cycles = len(training_cycles(project)[0])
    return (f"Not made yet: the first student runs {_teachers(len(teachers))} over {cycles} cycles "
            f"x {distill.passes} views first")


def _teachers(n: int) -> str:
    return "the teacher" if n == 1 else f"the {n} teachers"


def default_collab_group(arch: str) -> str:
    return f"collab-{arch}"


def collab_jobs(project: Project, choices: TrainChoices, collab: CollabChoices) -> CollabJobs:
    """One lockstep job per seed, a model of ``choices.arch`` per representation (``rsc distill --mode collab``).

    The settings of every model are checked here; that the models can train together (the same cycles,
    the same lockstep settings) is checked when the job is stored (:func:`trainer.jobs.submit_collab`).
    """
    from ..features.sets import FEATURE_SETS
    from ..train.collab import check_weights

    names = [str(name).strip() for name in collab.representations if str(name).strip()]
    unknown = [name for name in names if name not in FEATURE_SETS]
    if unknown:
        raise SpecError(f"unknown representation {unknown[0]!r} (expected feature sets of {', '.join(FEATURE_SETS)})")
    if len(names) < 2 or len(set(names)) != len(names):
        raise SpecError(f"a collaborative job needs at least two different representations, got {', '.join(names) or 'none'}")
    try:
        check_weights(collab.peer_weight, collab.temperature)
    except TrainError as exc:
        raise SpecError(str(exc)) from None
    group = choices.group or default_collab_group(choices.arch)
    jobs = []
    for seed in choices.seed_list():
        base = choices.spec(seed)
        jobs.append([dataclasses.replace(base, feature_set=name, model_args={**base.model_args, "feature_set": name},
                                         group=f"{group}-{name}") for name in names])
    check_specs([spec for job in jobs for spec in job])
    return CollabJobs(group, jobs, dataclasses.replace(collab, representations=tuple(names)))


def sweep_plan(project: Project, choices: TrainChoices, distill: DistillChoices,
               ks: str | Sequence[int]) -> SweepPlan:
    """The teacher-count study's runs (``rsc sweep``), every run's settings checked; ``choices.group`` is
    the prefix of its groups. Runs that already exist are found, not planned again."""
    try:
        plan = plan_sweep(
            project, distill.teachers, choices.arch, ks, choices.seed_list(), distill.mode, prefix=choices.group,
            temperature=1.0 if distill.temperature is None else distill.temperature,
            hard_weight=0.0 if distill.hard_weight is None else distill.hard_weight, noise_var=distill.noise_var,
            **choices.settings(),
        )
    except SweepError as exc:
        raise SpecError(str(exc)) from None
    check_specs(plan.specs)
    return plan
