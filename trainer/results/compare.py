"""Two systems side by side on the same cycles: what ``rsc compare`` prints and the Compare view shows.

A system is named by a short text (:func:`parse_system`): ``RUN_ID``, one run; ``group:NAME``, the ensemble
of a group's finished runs (argmax of their mean stored logits); ``group:NAME@K``, the ensemble of its first
K runs by seed; ``group:NAME@mean``, the group scored run by run (means of its seeds' Sp, Se and Score).
Everything is computed from stored logits and the cycles' current labels; nothing is re-run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import runs
from ..evaluate import icbhi_score, mean_std
from ..project import Project, ProjectError
from .breakdown import DIMENSIONS, cycle_metadata, metric_breakdown
from .calibration import DEFAULT_BINS, calibration, softmax
from .ensembles import EnsembleOutputs, ensemble_logits, resolve_runs
from .significance import EXACT_BELOW, mcnemar, paired_bootstrap, seed_test

GROUP_PREFIX = "group:"


class ComparisonError(ProjectError):
    """Two systems that cannot be compared (unknown name, different cycles); the message says why."""


@dataclass
class System:
    name: str  # as the user wrote it
    kind: str  # "run", "ensemble" or "mean"
    group: str | None
    outputs: EnsembleOutputs

    @property
    def run_ids(self) -> list[str]:
        return list(self.outputs.run_ids)

    @property
    def predictions(self) -> np.ndarray:
        """(N,) for a run or an ensemble; (N, K) one column per run for a group mean."""
        if self.kind == "mean":
            return self.outputs.logits.argmax(axis=2)
        return self.outputs.predictions()

    @property
    def hits(self) -> np.ndarray:
        predictions = self.predictions
        labels = self.outputs.labels
        return predictions == (labels[:, None] if predictions.ndim == 2 else labels)

    def run_scores(self) -> list[float]:
        """Each run's own Score on the system's cycles."""
        labels = self.outputs.labels
        return [icbhi_score(labels, one.argmax(axis=1))["score"] for one in self.outputs.logits.transpose(1, 0, 2)]


def parse_system(text: str) -> tuple[str, str | None, str | None]:
    """(kind, group, modifier) of a system's name: ("run", None, None) or ("group", NAME, "mean" | "K" | None)."""
    if not text.startswith(GROUP_PREFIX):
        return "run", None, None
    name, at, modifier = text[len(GROUP_PREFIX):].rpartition("@")
    if not at or not (modifier == "mean" or modifier.isdigit()):
        name, modifier = text[len(GROUP_PREFIX):], None  # an "@" that is part of the group's name
    if not name:
        raise ComparisonError(f"{text!r}: no group name after {GROUP_PREFIX!r}")
    return "group", name, modifier


def resolve_system(project: Project, text: str, split: str | None = "test") -> System:
    kind, group, modifier = parse_system(text)
    if kind == "run":
        if not runs.run_exists(project, text):
            is_group = text in runs.group_names(project)
            hint = f"; for the ensemble of the group {text!r} write {GROUP_PREFIX}{text}" if is_group else ""
            raise ComparisonError(f"no run {text!r} in {project.path.name}{hint}")
        return System(text, "run", None, ensemble_logits(project, [text], split))
    k = int(modifier) if modifier and modifier.isdigit() else None
    run_ids = resolve_runs(project, group, k)
    return System(text, "mean" if modifier == "mean" else "ensemble", group, ensemble_logits(project, run_ids, split))


def _check_same_cycles(a: System, b: System, split: str | None) -> None:
    ids_a, ids_b = set(a.outputs.cycle_ids.tolist()), set(b.outputs.cycle_ids.tolist())
    if ids_a != ids_b:
        raise ComparisonError(
            f"{a.name} and {b.name} are not scored on the same cycles of split {split!r}: {a.name} has logits "
            f"on {len(ids_a)}, {b.name} on {len(ids_b)}, {len(ids_a & ids_b)} shared; a paired comparison needs "
            "the same cycles (were cycles added or deleted between the runs?)"
        )


def _summary(system: System, bins: int) -> dict:
    labels, logits = system.outputs.labels, system.outputs.logits
    scores = system.run_scores()
    if system.kind == "mean":
        per_run = [icbhi_score(labels, logits[:, k].argmax(axis=1)) for k in range(logits.shape[1])]
        metrics = {key: mean_std(m[key] for m in per_run)[0] for key in ("sp", "se", "score")}
        reliability = None  # one diagram per run; the mean of their ECEs stands for the group
        ece = mean_std(calibration(softmax(logits[:, k]), labels, bins)["ece"] for k in range(logits.shape[1]))[0]
    else:
        metrics = icbhi_score(labels, system.predictions)
        metrics["confusion"] = metrics["confusion"].tolist()
        reliability = calibration(softmax(system.outputs.mean_logits), labels, bins)
        ece = reliability["ece"]
    mean, std = mean_std(scores)
    return {
        "name": system.name, "kind": system.kind, "group": system.group, "run_ids": system.run_ids,
        **metrics, "ece": ece, "reliability": reliability,
        "run_scores": {"values": scores, "mean": mean, "std": std if len(scores) > 1 else None},
    }


def _breakdown(project: Project, a: System, b: System) -> dict[str, list[dict]]:
    """Per dimension, one row per value with both systems' metrics on that subgroup's cycles."""
    metadata = cycle_metadata(project, a.outputs.cycle_ids)
    groups = {d: metadata[d] for d in DIMENSIONS}
    per_a = metric_breakdown(a.outputs.labels, a.predictions, groups)
    per_b = metric_breakdown(b.outputs.labels, b.predictions, groups)
    out = {}
    for dimension in DIMENSIONS:
        out[dimension] = [
            {"value": ra["value"], "n": ra["n"], "normal": ra["normal"], "abnormal": ra["abnormal"],
             "a": {k: ra[k] for k in ("sp", "se", "score")}, "b": {k: rb[k] for k in ("sp", "se", "score")}}
            for ra, rb in zip(per_a[dimension], per_b[dimension])
        ]
    return out


def compare_systems(
    project: Project,
    a: str,
    b: str,
    split: str | None = "test",
    n_resamples: int = 10_000,
    seed: int = 0,
    bins: int = DEFAULT_BINS,
    exact_below: int = EXACT_BELOW,
) -> dict:
    """Both systems' metrics, the bootstrap interval of B - A, McNemar, the seed-level tests and breakdowns."""
    first, second = resolve_system(project, a, split), resolve_system(project, b, split)
    _check_same_cycles(first, second, split)  # same set, and ensemble_logits sorts by id: row i is one cycle in both
    labels = first.outputs.labels
    summary_a, summary_b = _summary(first, bins), _summary(second, bins)
    result = {
        "split": split,
        "n_cycles": int(len(labels)),
        "a": summary_a,
        "b": summary_b,
        "difference": {key: summary_b[key] - summary_a[key] for key in ("sp", "se", "score")},
        "bootstrap": paired_bootstrap(labels, first.hits, second.hits, n_resamples, seed),
        "mcnemar": None,
        "seeds": None,
        "notes": [],
    }
    if first.kind != "mean" and second.kind != "mean":
        result["mcnemar"] = mcnemar(first.hits, second.hits, exact_below)
    else:
        result["notes"].append("McNemar needs one prediction per cycle; a group mean (@mean) has one per run")
    if len(first.run_ids) > 1 and len(second.run_ids) > 1:
        result["seeds"] = seed_test(first.run_scores(), second.run_scores(), seed)
        if set(first.run_ids) & set(second.run_ids):
            result["notes"].append("the two systems share runs, so the seed-level tests are not independent")
    else:
        result["notes"].append("seed-level tests need several runs on both sides (a group: or group:...@mean)")
    result["breakdown"] = _breakdown(project, first, second)
    return result


# -- as text (what `rsc compare` prints) -------------------------------------------------------------
def _num(value, digits: int = 2, sign: bool = False) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def format_p(p: float | None, resamples: int | None = None) -> str:
    """A p-value as text; a bootstrap p of 0 is below its resolution, 2 / resamples."""
    if p is None or p != p:
        return "-"
    if p == 0 and resamples:
        return f"< {2 / resamples:.2g}"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def _describe(summary: dict) -> str:
    runs_text = " ".join(summary["run_ids"])
    if summary["kind"] == "run":
        return f"run {runs_text}"
    what = "ensemble" if summary["kind"] == "ensemble" else "mean over the seeds"
    return f"{what} of {len(summary['run_ids'])} runs of {summary['group']} ({runs_text})"


def _seeds_line(seeds: dict) -> str:
    a, b, w, perm = seeds["a"], seeds["b"], seeds["welch"], seeds["permutation"]
    return (f"Across seeds: A {a['n']} runs {a['mean']:.2f} ± {a['std']:.2f}, B {b['n']} runs {b['mean']:.2f} ± "
            f"{b['std']:.2f}; Welch t = {_num(w['t'])} (df {w['df']:.1f}), p = {format_p(w['p'])}; permutation "
            f"p = {format_p(perm['p'])} ({'exact, ' if perm['exact'] else ''}{perm['permutations']} splits)")


def format_comparison(result: dict) -> str:
    a, b, boot = result["a"], result["b"], result["bootstrap"]
    lines = [f"on {result['split'] or 'every split'}: {result['n_cycles']} cycles",
             f"  A  {a['name']}: {_describe(a)}", f"  B  {b['name']}: {_describe(b)}", "",
             f"  {'':<6} {'Sp':>7} {'Se':>7} {'Score':>7} {'ECE':>7}"]
    for tag, s in (("A", a), ("B", b)):
        lines.append(f"  {tag:<6} {_num(s['sp']):>7} {_num(s['se']):>7} {_num(s['score']):>7} {_num(s['ece'], 4):>7}")
    d = result["difference"]
    lines.append(f"  {'B - A':<6} {_num(d['sp'], sign=True):>7} {_num(d['se'], sign=True):>7} "
                 f"{_num(d['score'], sign=True):>7}")
    lines += ["", f"Score B - A: {_num(boot['difference'], sign=True)}, {100 * boot['level']:.0f}% interval "
                  f"[{_num(boot['low'], sign=True)}, {_num(boot['high'], sign=True)}], p = "
                  f"{format_p(boot['p'], boot['resamples'])} (paired bootstrap over cycles, {boot['resamples']} "
                  f"resamples, seed {boot['seed']}"
                  + (f"; {boot['undefined']} resamples without a normal or abnormal cycle left out" if boot["undefined"]
                     else "") + ")"]
    m = result["mcnemar"]
    if m:
        statistic = f"chi-square {m['statistic']:.2f}, " if m["method"] != "exact binomial" else ""
        lines.append(f"McNemar ({m['method']}): only A right on {m['a_only']} cycles, only B right on "
                     f"{m['b_only']}; {statistic}p = {format_p(m['p'])}")
    if result["seeds"]:
        lines.append(_seeds_line(result["seeds"]))
    lines += [f"note: {note}" for note in result["notes"]]
    for dimension, rows in result["breakdown"].items():
        lines += ["", f"  {dimension.replace('_', ' '):<18} {'n':>5} {'A Sp':>7} {'A Se':>7} {'A Score':>7} "
                      f"{'B Sp':>7} {'B Se':>7} {'B Score':>7}"]
        for row in rows:
            ra, rb = row["a"], row["b"]
            lines.append(f"  {str(row['value']):<18} {row['n']:>5} {_num(ra['sp']):>7} {_num(ra['se']):>7} "
                         f"{_num(ra['score']):>7} {_num(rb['sp']):>7} {_num(rb['se']):>7} {_num(rb['score']):>7}")
    return "\n".join(lines)
