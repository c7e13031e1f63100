"""Offline teacher passes for consistent ensemble distillation (``rsc logits``, seed paper 003).

A teacher group's finished runs see N augmented views of every training cycle of the project; the mean
of their logits on each view is stored as its top k with the view's seed and digest
(:mod:`trainer.distill.ced`). A CED student replays the same views from those seeds.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from ..distill.ced import LogitPasses, ViewRecipe, make_views, passes_path, save_passes, topk_of, view_digest, view_seed
from ..features import load_features
from ..features.sets import FEATURE_SETS
from ..project import Project
from ..runs import DONE, list_runs
from .data import training_cycles
from .provenance import code_version
from .runner import load_run_model
from .spec import TrainError

BATCH = 16


def passes_name(group: str, passes: int, base_seed: int) -> str:
    return f"{group}-x{passes}-s{base_seed}"


def run_passes(project: Project, group: str, passes: int = 4, k: int | None = None, base_seed: int = 0,
               recipe: ViewRecipe | None = None, progress: Callable[[int, int], None] | None = None,
               teachers: list[str] | None = None) -> tuple[LogitPasses, dict]:
    """Run the group's finished teachers (or just ``teachers``, run ids of the group) over ``passes``
    views of each training cycle; store and return them.

    Returns the passes and figures: cycles, views, seconds, views per second, stored bytes per view, and
    the feature cache's bytes per cycle for comparison.
    """
    recipe = recipe or ViewRecipe()
    if passes < 1:
        raise TrainError(f"--passes must be at least 1, got {passes}")
    finished = list_runs(project, group=group, status=DONE)
    if teachers is not None:
        by_id = {r.id: r for r in finished}
        missing = [t for t in teachers if t not in by_id]
        if missing:
            raise TrainError(f"teacher {missing[0]} is not a finished run of group {group!r}; its views cannot be made")
        finished = [by_id[t] for t in teachers]
    teachers = finished
    if not teachers:
        raise TrainError(f"group {group!r} has no finished run to run over the views")
    models = [load_run_model(project, r.id) for r in teachers]
    sets = {m.feature_set for m in models}
    if len(sets) != 1:
        raise TrainError(f"group {group!r} mixes feature sets ({', '.join(sorted(sets))}); the views need one")
    if any(m.needs_text for m in models):
        raise TrainError(f"group {group!r} has teachers that read text prompts; CED passes take audio teachers only")
    feature_set = FEATURE_SETS[sets.pop()]
    num_classes = models[0].num_classes
    k = num_classes if k is None else int(k)
    if not 1 <= k <= num_classes:
        raise TrainError(f"--top-k must be between 1 and {num_classes}, got {k}")
    train, _ = training_cycles(project)
    if not train:
        raise TrainError(f"{project.path.name} has no training cycles to run the teachers over")
    ids = [int(c["id"]) for c in train]
    x = load_features(project, feature_set.name, train)
    n = len(ids)
    seeds = np.empty((n, passes), dtype=np.int64)
    digests = np.empty((n, passes), dtype=np.int64)
    top_index = np.empty((n, passes, k), dtype=np.uint8)
    top_value = np.empty((n, passes, k), dtype=np.float16)
    started, total, done = time.perf_counter(), n * passes, 0
    with torch.inference_mode():
        for view in range(passes):
            for start in range(0, n, BATCH):
                rows = range(start, min(n, start + BATCH))
                batch_seeds = [view_seed(base_seed, ids[i], view) for i in rows]
                views = make_views(x[start : rows.stop], batch_seeds, recipe, feature_set.normalization)
                logits = sum(m(views).float() for m in models) / len(models)
                index, value = topk_of(logits, k)
                seeds[rows.start : rows.stop, view] = batch_seeds
                digests[rows.start : rows.stop, view] = [view_digest(v) for v in views]
                top_index[rows.start : rows.stop, view], top_value[rows.start : rows.stop, view] = index, value
                done += len(rows)
                if progress:
                    progress(done, total)
    seconds = time.perf_counter() - started
    meta = {
        "group": group, "teachers": [r.id for r in teachers], "passes": passes, "k": k, "base_seed": int(base_seed),
        "recipe": recipe.to_dict(), "feature_set": feature_set.name, "normalization": feature_set.normalization,
        "num_classes": num_classes, "code_version": code_version(),
    }
    result = LogitPasses(meta, np.asarray(ids, dtype=np.int64), seeds, digests, top_index, top_value)
    path = save_passes(passes_path(project.artifacts, passes_name(group, passes, base_seed)), result)
    figures = {
        "path": str(path), "cycles": n, "views": total, "seconds": round(seconds, 2),
        "views_per_s": round(total / seconds, 1) if seconds > 0 else None,
        "bytes_per_view": result.bytes_per_view(), "file_bytes": path.stat().st_size,
        "feature_bytes_per_cycle": int(np.prod(x.shape[1:])) * 4,
    }
    return result, figures
