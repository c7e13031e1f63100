"""Joint feature and output distillation (seed paper 004, REFERENCE.md section 8).

The student learns the teachers' mean soft labels, as a soft-label student does, and at the same time
the intermediate feature map of one chosen teacher at one chosen layer: a small projector (a 1x1
convolution to the teacher's channels, then a bilinear resize to the teacher map's height and width)
turns the student's map at its chosen layer into the teacher's shape, and the loss adds
``feature_weight * MSE(projector(student map), teacher map)``. The teacher runs, frozen and in eval
mode, on the same (augmented) batch as the student, so the two maps describe the same input.

Teacher and student may be of different architectures; only their input features must be the same
set. Layers are named as in ``model.named_modules()`` (``conv_block3``, ``backbone.encoder.stages.2``,
``blocks.1``); :func:`feature_layers` lists the candidates of a model. A token map (B, N, D) of a
transformer is matched by a linear layer and a linear resize over the tokens; a 4-D map meeting a
token map is read as its H x W positions, each a token of C features.

The resize is a pair of fixed interpolation matrices (exactly ``F.interpolate(mode="bilinear",
align_corners=False)``, which is separable), because the backward pass of ``F.interpolate`` on CUDA
has no deterministic kernel and runs must resume to the same weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..distill import TargetProvider
from .spec import TrainError
from .tasks import Batch, SoftLabelTask

AUTO = "auto"


class _Captured(Exception):
    """Raised by the teacher's hook once its map is kept: the layers after it need not run."""


def _probe(model: nn.Module, example: torch.Tensor | None = None) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
    """One forward pass on ``example`` (features (B, T, F); default the model's example input of one
    cycle): per-sample map shapes of the modules called once with a 3-D or 4-D tensor output (in call
    order), and the call count of every module called. Map sizes follow the input size."""
    from ..models import example_inputs

    shapes: dict[str, tuple[int, ...]] = {}
    calls: dict[str, int] = {}

    def hook(name):
        def record(module, args, output):
            calls[name] = calls.get(name, 0) + 1
            if isinstance(output, torch.Tensor) and output.dim() in (3, 4):
                shapes[name] = tuple(output.shape[1:])
            else:
                shapes.pop(name, None)
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    was_training = model.training
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        model.eval()  # running statistics stay as they are; dropout draws nothing
        inputs = example_inputs(model, batch=1, device=device)
        if example is not None:
            inputs["x"] = example[:1].to(device)
        with torch.no_grad():
            model(**inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    # A module called twice (a shared dropout or activation) has no one map to match.
    return {n: s for n, s in shapes.items() if calls[n] == 1}, calls


def feature_layers(model: nn.Module, example: torch.Tensor | None = None) -> list[str]:
    """Names of the modules whose output is a 4-D map (B, C, H, W) or a 3-D token map (B, N, D), in forward order."""
    return list(_probe(model, example)[0])


def _positions(shape: tuple[int, ...]) -> int:
    return math.prod(shape[1:]) if len(shape) == 3 else shape[0]


def resolve_layer(model: nn.Module, name: str | None, role: str,
                  example: torch.Tensor | None = None) -> tuple[str, tuple[int, ...]]:
    """The layer ``name`` of ``model`` and its per-sample map shape; ``auto`` (or None) is the last map
    with more than one position (the deepest before pooling). Anything else is refused naming the candidates."""
    shapes, calls = _probe(model, example)
    arch = getattr(model, "arch", "") or type(model).__name__
    if name in (None, AUTO):
        spread = [n for n, s in shapes.items() if _positions(s) > 1]
        if not spread:
            raise TrainError(f"{role} {arch} has no layer with a feature map to distil")
        return spread[-1], shapes[spread[-1]]
    if name in shapes:
        return name, shapes[name]
    candidates = ", ".join(shapes) or "none"
    if name in calls:
        why = (f"is called {calls[name]} times in one forward pass" if calls[name] > 1
               else "gives no 3-D or 4-D feature map")
        raise TrainError(f"{role} layer {name!r} of {arch} {why}; candidates: {candidates}")
    raise TrainError(f"{role} {arch} has no layer {name!r}; candidates: {candidates}")


def _resize_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """(size_in, size_out): x @ M is F.interpolate(x, size_out, mode='linear', align_corners=False)."""
    eye = torch.eye(size_in, dtype=torch.float64).unsqueeze(0)  # each row: one input position
    return F.interpolate(eye, size=size_out, mode="linear", align_corners=False)[0].float()


class FeatureProjector(nn.Module):
    """Student map -> the teacher map's shape. Shapes are per sample: (C, H, W) maps or (N, D) token maps."""

    def __init__(self, student_shape: tuple[int, ...], teacher_shape: tuple[int, ...],
                 generator: torch.Generator | None = None):
        super().__init__()
        self.student_shape, self.teacher_shape = tuple(student_shape), tuple(teacher_shape)
        for shape in (self.student_shape, self.teacher_shape):
            if len(shape) not in (2, 3):
                raise TrainError(f"a feature map has shape (C, H, W) or (tokens, D) per sample, got {shape}")
        self.spatial = len(self.student_shape) == 3 and len(self.teacher_shape) == 3
        if self.spatial:
            (cs, hs, ws), (ct, ht, wt) = self.student_shape, self.teacher_shape
            self.proj = nn.Conv2d(cs, ct, kernel_size=1)
            self.register_buffer("resize_h", _resize_matrix(hs, ht), persistent=False)
            self.register_buffer("resize_w", _resize_matrix(ws, wt), persistent=False)
        else:
            (ns, ds), (nt, dt) = self._tokens(self.student_shape), self._tokens(self.teacher_shape)
            self.proj = nn.Linear(ds, dt)
            self.register_buffer("resize_n", _resize_matrix(ns, nt), persistent=False)
        if generator is not None:  # the initialisation nn.Conv2d / nn.Linear use, from the given stream
            nn.init.kaiming_uniform_(self.proj.weight, a=math.sqrt(5), generator=generator)
            bound = 1.0 / math.sqrt(self.proj.weight[0].numel())
            nn.init.uniform_(self.proj.bias, -bound, bound, generator=generator)

    @staticmethod
    def _tokens(shape: tuple[int, ...]) -> tuple[int, int]:
        return (shape[1] * shape[2], shape[0]) if len(shape) == 3 else shape

    def target(self, teacher_map: torch.Tensor) -> torch.Tensor:
        """The teacher map in the layout :meth:`forward` produces (a 4-D map met by tokens becomes tokens)."""
        if tuple(teacher_map.shape[1:]) != self.teacher_shape:
            raise TrainError(f"the teacher's feature map has shape {tuple(teacher_map.shape[1:])}, the projector "
                             f"was built for {self.teacher_shape} (other input features than when it was built?)")
        if not self.spatial and teacher_map.dim() == 4:
            return teacher_map.flatten(2).transpose(1, 2)
        return teacher_map

    def forward(self, student_map: torch.Tensor) -> torch.Tensor:
        if tuple(student_map.shape[1:]) != self.student_shape:
            raise TrainError(f"the student's feature map has shape {tuple(student_map.shape[1:])}, the projector "
                             f"was built for {self.student_shape} (other input features than when it was built?)")
        if self.spatial:
            y = self.proj(student_map)
            return torch.einsum("bchw,hH,wW->bcHW", y, self.resize_h.to(y.dtype), self.resize_w.to(y.dtype))
        if student_map.dim() == 4:
            student_map = student_map.flatten(2).transpose(1, 2)
        y = self.proj(student_map)  # (B, N_student, D_teacher)
        return torch.einsum("bnd,nN->bNd", y, self.resize_n.to(y.dtype))


class FeatureKDTask:
    """Output KD against the mean-teacher targets plus ``feature_weight`` x MSE of the projected feature map.

    ``targets`` holds ``temperature``, ``hard_weight`` (and ``mode``, default ``mean``) as in a resolved
    spec. ``example``: features of the training input size, when it is not one cycle of the model's
    feature set (the projector is sized for the maps of that input). Call :meth:`attach` with the student
    before training; :meth:`parameters` (the projector's) then go into the optimizer, and
    :meth:`state_dict` into the resume state. ``seed`` initialises the projector from a stream of its own.
    """

    def __init__(self, teacher: nn.Module, teacher_layer: str, student_layer: str, provider: TargetProvider,
                 targets: dict, feature_weight: float, device: torch.device | str, seed: int = 0,
                 example: torch.Tensor | None = None):
        weight = float(feature_weight)
        if not (weight >= 0 and math.isfinite(weight)):
            raise TrainError(f"the feature distillation weight must be a number >= 0, got {feature_weight!r}")
        self.device, self.provider, self.feature_weight, self.seed = torch.device(device), provider, weight, int(seed)
        # The output part is the plain soft-label task's loss; this task adds the feature maps to it.
        self.output = SoftLabelTask(provider, {"mode": "mean", **targets}, self.device)
        self.mode, self.temperature, self.hard_weight = self.output.mode, self.output.temperature, self.output.hard_weight
        self.teacher = teacher.to(self.device).eval().requires_grad_(False)
        self.example = example
        self.teacher_layer, self.teacher_shape = resolve_layer(self.teacher, teacher_layer, "teacher", example)
        self.requested_student_layer = student_layer
        self.student_layer: str | None = None
        self.projector: FeatureProjector | None = None
        self.last_losses: dict[str, torch.Tensor] = {}
        self._student: nn.Module | None = None
        self._handles: list = []
        self._maps: dict[str, torch.Tensor] = {}
        self._capturing = False

    # -- setting up -------------------------------------------------------------------------------
    def attach(self, student: nn.Module) -> "FeatureKDTask":
        """Find the student's layer, build the projector on the task's device and hook both models."""
        check_inputs_match(self.teacher, student)
        self.detach()
        self.student_layer, student_shape = resolve_layer(student, self.requested_student_layer, "student", self.example)
        generator = torch.Generator().manual_seed(self.seed)
        self.projector = FeatureProjector(student_shape, self.teacher_shape, generator).to(self.device)
        self._student = student
        modules = dict(student.named_modules())
        self._handles = [
            modules[self.student_layer].register_forward_hook(self._keep("student")),
            dict(self.teacher.named_modules())[self.teacher_layer].register_forward_hook(self._keep("teacher", stop=True)),
        ]
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles, self._student = [], None

    def _keep(self, role: str, stop: bool = False):
        def hook(module, args, output):
            if self._capturing:
                self._maps[role] = output
                if stop:
                    raise _Captured
        return hook

    def parameters(self) -> list[nn.Parameter]:
        """The projector's parameters, to train with the student's (an extra optimizer parameter group)."""
        return list(self._attached().parameters())

    def _attached(self) -> FeatureProjector:
        if self.projector is None:
            raise TrainError("feature distillation: attach(student) first")
        return self.projector

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The projector's weights, for the run's resume state (the teacher is read from its own run)."""
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in self._attached().state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        projector = self._attached()
        ours = projector.state_dict()
        wrong = sorted(set(ours) ^ set(state)) or [k for k in ours if tuple(state[k].shape) != tuple(ours[k].shape)]
        if wrong:
            raise TrainError(f"the stored feature projector does not fit {self.student_layer} -> {self.teacher_layer} "
                             f"({', '.join(wrong)}): the run was stored with other layers or models")
        projector.load_state_dict(state)

    def describe(self) -> dict:
        """What the task distils from, for the run's record and its log."""
        return {"teacher_layer": self.teacher_layer, "student_layer": self.student_layer,
                "teacher_shape": list(self.teacher_shape),
                "student_shape": list(self.projector.student_shape) if self.projector else None,
                "feature_weight": self.feature_weight}

    # -- training ---------------------------------------------------------------------------------
    def start_epoch(self, epoch_index: int) -> None:
        self.output.start_epoch(epoch_index)

    def teacher_map(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's map at its layer for inputs ``x`` (its forward pass stops there)."""
        if self.teacher.training:
            self.teacher.eval()
        self._maps.pop("teacher", None)
        self._capturing = True
        try:
            with torch.no_grad():
                self.teacher(x)
        except _Captured:
            pass
        finally:
            self._capturing = False
        return self._maps.pop("teacher").detach()

    def forward(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        projector = self._attached()
        if model is not self._student:
            raise TrainError("feature distillation: forward() got another model than the attached student")
        self._maps.pop("student", None)
        self._capturing = True
        try:
            logits = model(batch.x, text=batch.text).float()
        finally:
            self._capturing = False
        student_map = self._maps.pop("student")
        teacher_map = self.teacher_map(batch.x)
        output = self.output.soft_loss(logits, batch)
        feature = F.mse_loss(projector(student_map).float(), projector.target(teacher_map).float())
        # Detached tensors, not floats: reading a value would wait for the GPU at every step.
        self.last_losses = {"output": output.detach(), "feature": feature.detach()}
        return output + self.feature_weight * feature, logits


def check_inputs_match(teacher: nn.Module, student: nn.Module) -> None:
    """The teacher runs on the student's batch, so both must read the same features (and no text)."""
    if getattr(teacher, "needs_text", False):
        raise TrainError(f"feature distillation runs the teacher on the student's inputs; {teacher.arch} needs "
                         "text prompts as well: choose a teacher that reads features only")
    if getattr(student, "feature_set", None) != getattr(teacher, "feature_set", None):
        raise TrainError(f"feature distillation runs the teacher on the student's inputs: {student.arch} reads "
                         f"{student.feature_set} features, the teacher {teacher.arch} reads {teacher.feature_set}")


def check_pairing(teacher: nn.Module, student: nn.Module, feature: dict) -> tuple[str, str]:
    """What a run's creation checks before its row is written: the models pair and both layers exist.
    Returns the (teacher, student) layer names, ``auto`` resolved."""
    check_inputs_match(teacher, student)
    return (resolve_layer(teacher, feature["teacher_layer"], "teacher")[0],
            resolve_layer(student, feature["student_layer"], "student")[0])


def resolve_feature_settings(feature: dict, teachers: list[str]) -> dict:
    """The ``targets["feature"]`` part of a spec with its defaults filled in and checked.

    ``teacher``: the run whose maps are matched, one of the soft-label teachers (default the first);
    ``teacher_layer`` / ``student_layer``: module names or ``auto``; ``weight``: the MSE term's weight.
    """
    if not isinstance(feature, dict):
        raise TrainError(f"feature distillation settings must be a mapping, got {feature!r}")
    unknown = sorted(set(feature) - {"teacher", "teacher_layer", "student_layer", "weight"})
    if unknown:
        raise TrainError(f"unknown feature distillation setting(s) {', '.join(unknown)} "
                         "(known: teacher, teacher_layer, student_layer, weight)")
    if not teachers:
        raise TrainError("feature distillation needs a teacher run among the student's teachers")
    teacher = feature.get("teacher") or teachers[0]
    if teacher not in teachers:
        raise TrainError(f"feature teacher {teacher!r} is not one of the student's teachers ({', '.join(teachers)})")
    try:
        weight = float(feature.get("weight", 1.0))
    except (TypeError, ValueError):
        weight = float("nan")
    if not (weight >= 0 and math.isfinite(weight)):
        raise TrainError(f"the feature distillation weight must be a number >= 0, got {feature.get('weight')!r}")
    return {"teacher": teacher, "teacher_layer": str(feature.get("teacher_layer") or AUTO),
            "student_layer": str(feature.get("student_layer") or AUTO), "weight": weight}
