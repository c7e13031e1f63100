"""The CED task: a student learns each cycle from a stored view, replayed from its seed (seed paper 003).

Every epoch each fitted cycle is shown one of its stored views, drawn from the run's per-epoch stream;
the view is made again from its seed and checked against the digest of what the teachers saw, and the
target is the softmax of the teachers' stored top-k logits on it. With ``hard_weight`` 0 the labels are
never read (label-free distillation).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..distill import DistillError, distillation_loss
from ..distill.ced import LogitPasses, load_passes, make_views, passes_path, view_digest
from ..project import Project
from .data import TrainData, check_teachers
from .determinism import CED_VIEW_STREAM, epoch_seed
from .spec import TrainError, TrainSpec

class CedTask:
    def __init__(self, passes: LogitPasses, fit_ids: list[int], targets: dict, seed: int, device: torch.device,
                 check_digests: bool = True):
        row_of = passes.row_of()
        missing = [i for i in fit_ids if i not in row_of]
        if missing:
            raise TrainError(f"{len(missing)} of the {len(fit_ids)} cycles to fit have no stored teacher views "
                             f"(first: cycle {missing[0]}); run `rsc logits` again for this project's cycles")
        self.passes, self.rows = passes, np.asarray([row_of[i] for i in fit_ids], dtype=np.int64)
        self.recipe, self.normalization = passes.recipe, passes.meta["normalization"]
        self.temperature, self.hard_weight = float(targets["temperature"]), float(targets["hard_weight"])
        self.seed, self.device, self.check_digests = int(seed), device, check_digests
        self.views = np.zeros(len(fit_ids), dtype=np.int64)

    def start_epoch(self, epoch_index: int) -> None:
        gen = torch.Generator().manual_seed(epoch_seed(self.seed, epoch_index + 1, CED_VIEW_STREAM))
        self.views = torch.randint(0, self.passes.passes, (len(self.rows),), generator=gen).numpy()

    def replay(self, x: torch.Tensor, positions: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """The stored views of the fitted cycles at ``positions`` (inputs ``x``), checked against their digests."""
        rows, views = self.rows[positions], self.views[positions]
        seeds = self.passes.seeds[rows, views]
        made = make_views(x, seeds.tolist(), self.recipe, self.normalization)
        if self.check_digests:
            for j, view in enumerate(made):
                if view_digest(view) != int(self.passes.digests[rows[j], views[j]]):
                    cycle = int(self.passes.cycle_ids[rows[j]])
                    raise TrainError(f"the replayed view {int(views[j])} of cycle {cycle} differs from the one the "
                                     "teachers saw (other features or other code); run `rsc logits` again")
        return made.to(x.device), rows, views

    def forward(self, model: torch.nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, rows, views = self.replay(batch.x, batch.positions.cpu().numpy())
        targets = self.passes.soft_targets(rows, views, self.temperature).to(x.device)
        logits = model(x, text=batch.text).float()
        labels = batch.labels if self.hard_weight > 0 else None
        loss = distillation_loss(logits, targets, labels, "ced", temperature=self.temperature, hard_weight=self.hard_weight)
        return loss, logits


def ced_task(project: Project, spec: TrainSpec, data: TrainData, device: torch.device,
             progress: Callable[[int, int], None] | None = None) -> CedTask:
    """The CED task of a resolved student spec: its stored passes, checked against its teachers and
    features. Passes not stored yet are made first from the spec's teachers (``progress(done, total)``
    hears of the views), when the spec says how (``targets["views"]``)."""
    targets = spec.targets
    path = passes_path(project.artifacts, targets["passes"])
    if not path.exists() and targets.get("views") and targets.get("teacher_group"):
        from .logit_passes import passes_name, run_passes

        views = targets["views"]
        if passes_name(targets["teacher_group"], views["count"], views["seed"]) != targets["passes"]:
            raise TrainError(f"run {spec.group} seed {spec.seed}: its views {targets['passes']} do not match their recipe")
        run_passes(project, targets["teacher_group"], passes=views["count"], base_seed=views["seed"],
                   progress=progress, teachers=list(targets["teachers"]))
    try:
        passes = load_passes(path)
    except DistillError as exc:
        raise TrainError(f"run {spec.group} seed {spec.seed}: {exc}") from None
    if targets["teachers"] and sorted(passes.meta["teachers"]) != sorted(targets["teachers"]):
        raise TrainError(f"the stored views {targets['passes']} were made by teachers {', '.join(passes.meta['teachers'])}, "
                         f"not by this run's {', '.join(targets['teachers'])}; run `rsc logits` for them")
    check_teachers(project, passes.meta["teachers"])
    if passes.meta["feature_set"] != spec.feature_set:
        raise TrainError(f"the stored views {targets['passes']} are of {passes.meta['feature_set']} features; "
                         f"{spec.arch} reads {spec.feature_set}")
    fit_ids = [data.train_rows[i]["id"] for i in data.fit_pos.tolist()]
    return CedTask(passes, fit_ids, targets, spec.seed, device)
