"""Is one system better than another? Tests on the same cycles (paired) and across seeds.

On the cycles: a paired bootstrap of the ICBHI Score difference, and McNemar's test on hits and
misses (a hit is a 4-class prediction equal to the label, as in the ICBHI metric). Across seeds: a
Welch t-test and an exact permutation test on the per-seed Scores.

The bootstrap resamples cycles with replacement, but a resample's Score depends only on how many
cycles of each *pattern* it drew: normal or abnormal, and how many of each side's runs hit it (a
group's mean Score over its K runs shares its denominators, so only the count of hitting runs
matters). Drawing those counts from a multinomial has exactly the distribution of drawing N cycle
indices, and costs B x patterns (at most 2 (KA + 1) (KB + 1)) instead of B x N: 10,000 resamples of
2,756 cycles take milliseconds, not seconds.

Pure numpy and ``math``: no scipy.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from typing import Sequence

import numpy as np

# McNemar switches from the exact binomial to the chi-square approximation at this many discordant cycles.
EXACT_BELOW = 25
# Exact permutation tests enumerate every split of the seeds up to this many; beyond, a seeded sample.
EXACT_PERMUTATIONS = 20_000


def _hits_matrix(hits) -> np.ndarray:
    """Hits as (N, K) booleans: one column per prediction (K > 1 for a group of runs scored one by one)."""
    array = np.asarray(hits, dtype=bool)
    return array[:, None] if array.ndim == 1 else array


def cycle_patterns(labels, hits_a, hits_b) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of (abnormal, runs of A that hit, runs of B that hit) and how many cycles have each.

    Returns ``(patterns, sizes)``: patterns (U, 3) integers in ``np.unique`` order (sorted rows), sizes (U,).
    """
    abnormal = np.asarray(labels) != 0
    rows = np.column_stack([abnormal, _hits_matrix(hits_a).sum(axis=1), _hits_matrix(hits_b).sum(axis=1)])
    patterns, sizes = np.unique(rows.astype(np.int64), axis=0, return_counts=True)
    return patterns, sizes


def resample_patterns(sizes: Sequence[int], n_resamples: int, seed: int) -> np.ndarray:
    """Counts (B, U) of the cycles each bootstrap resample drew from each pattern (N draws per resample)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return rng.multinomial(int(sizes.sum()), sizes / sizes.sum(), size=int(n_resamples))


def _scores(counts: np.ndarray, abnormal: np.ndarray, hit_share: np.ndarray) -> np.ndarray:
    """Mean ICBHI Score over a side's runs for each row of pattern counts (NaN where undefined).

    ``hit_share``: per pattern, the share of the side's runs that hit its cycles.
    """
    counts = counts.astype(np.float64)
    normal = (~abnormal).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        sp = 100.0 * (counts @ (hit_share * normal)) / (counts @ normal)
        se = 100.0 * (counts @ (hit_share * abnormal)) / (counts @ abnormal.astype(np.float64))
    return (sp + se) / 2.0


def paired_bootstrap(labels, hits_a, hits_b, n_resamples: int = 10_000, seed: int = 0, level: float = 0.95) -> dict:
    """Bootstrap over cycles of the Score difference B - A, both systems scored on each resample.

    ``hits_a``/``hits_b``: (N,) booleans, or (N, K) for a group whose Score is the mean of its K runs.
    Returns the observed difference, the percentile interval at ``level``, and the two-sided p-value
    ``min(1, 2 * min(share of differences <= 0, share >= 0))``. Resamples without a normal or without an
    abnormal cycle have no Score; they are left out and counted in ``undefined``.
    """
    if n_resamples < 1:
        raise ValueError(f"the bootstrap needs at least one resample, got {n_resamples}")
    labels = np.asarray(labels)
    if not len(labels):
        raise ValueError("no cycles to resample")
    patterns, sizes = cycle_patterns(labels, hits_a, hits_b)
    abnormal = patterns[:, 0].astype(bool)
    share_a = patterns[:, 1] / _hits_matrix(hits_a).shape[1]
    share_b = patterns[:, 2] / _hits_matrix(hits_b).shape[1]
    observed = _scores(sizes[None], abnormal, share_b)[0] - _scores(sizes[None], abnormal, share_a)[0]
    counts = resample_patterns(sizes, n_resamples, seed)
    differences = _scores(counts, abnormal, share_b) - _scores(counts, abnormal, share_a)
    defined = differences[~np.isnan(differences)]
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(defined, [tail, 100.0 - tail]) if defined.size else (math.nan, math.nan)
    p = min(1.0, 2.0 * min(np.mean(defined <= 0), np.mean(defined >= 0))) if defined.size else math.nan
    return {
        "difference": float(observed),
        "low": float(low),
        "high": float(high),
        "level": level,
        "p": float(p),
        "resamples": int(n_resamples),
        "undefined": int(n_resamples - defined.size),
        "seed": int(seed),
        "n_cycles": int(len(labels)),
        "std": float(defined.std(ddof=1)) if defined.size > 1 else math.nan,
    }


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p of k or fewer successes in n fair trials (k <= n / 2): 2 * P(X <= k), at most 1."""
    tail = sum(Fraction(math.comb(n, i), 2**n) for i in range(k + 1))
    return float(min(Fraction(1), 2 * tail))


def chi2_1_survival(x: float) -> float:
    """P(X > x) for a chi-square variable with one degree of freedom (the square of a standard normal)."""
    return math.erfc(math.sqrt(max(x, 0.0) / 2.0))


def mcnemar(hits_a, hits_b, exact_below: int = EXACT_BELOW) -> dict:
    """McNemar's test on the cycles one system gets right and the other wrong.

    The statistic is the continuity-corrected chi-square ``max(|b - c| - 1, 0)^2 / (b + c)``; the p-value is
    the exact binomial one while ``b + c < exact_below``, the chi-square (1 dof) tail otherwise.
    """
    a = np.asarray(hits_a, dtype=bool)
    b_ = np.asarray(hits_b, dtype=bool)
    if a.shape != b_.shape or a.ndim != 1:
        raise ValueError(f"McNemar needs one hit per cycle for each system, got shapes {a.shape} and {b_.shape}")
    a_only = int(np.sum(a & ~b_))
    b_only = int(np.sum(~a & b_))
    discordant = a_only + b_only
    statistic = max(abs(a_only - b_only) - 1, 0) ** 2 / discordant if discordant else 0.0
    if discordant < exact_below:
        method, p = "exact binomial", binomial_two_sided(min(a_only, b_only), discordant)
    else:
        method, p = "chi-square, continuity corrected", chi2_1_survival(statistic)
    return {
        "a_only": a_only, "b_only": b_only, "both": int(np.sum(a & b_)), "neither": int(np.sum(~a & ~b_)),
        "statistic": float(statistic), "p": float(p), "method": method,
    }


# -- across seeds ------------------------------------------------------------------------------------
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return regularized_beta(df / (df + t * t), df / 2.0, 0.5)


def welch(a: Sequence[float], b: Sequence[float]) -> dict:
    """Welch's t-test of mean(b) - mean(a) with the Welch-Satterthwaite degrees of freedom."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size < 2 or y.size < 2:
        raise ValueError(f"Welch's test needs two or more values on each side, got {x.size} and {y.size}")
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    difference = float(y.mean() - x.mean())
    if va + vb == 0.0:  # every seed gave the same Score on both sides
        t = 0.0 if difference == 0 else math.copysign(math.inf, difference)
        return {"difference": difference, "t": t, "df": float(x.size + y.size - 2), "p": 1.0 if difference == 0 else 0.0}
    t = difference / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    return {"difference": difference, "t": float(t), "df": float(df), "p": t_two_sided(t, df)}


def permutation_test(a: Sequence[float], b: Sequence[float], n_permutations: int = 10_000, seed: int = 0) -> dict:
    """Two-sided permutation test of mean(b) - mean(a): the share of relabellings of the pooled values whose
    absolute mean difference reaches the observed one. Exact (every split) while there are at most
    ``EXACT_PERMUTATIONS`` splits, otherwise ``n_permutations`` seeded random ones."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    pooled = np.concatenate([x, y])
    n, k = pooled.size, x.size
    observed = abs(y.mean() - x.mean())
    total = math.comb(n, k)
    if total <= EXACT_PERMUTATIONS:
        members = np.zeros((total, n), dtype=bool)
        for row, chosen in enumerate(itertools.combinations(range(n), k)):
            members[row, list(chosen)] = True
        exact = True
    else:
        rng = np.random.default_rng(seed)
        members = np.zeros((n_permutations, n), dtype=bool)
        order = np.argsort(rng.random((n_permutations, n)), axis=1)[:, :k]
        np.put_along_axis(members, order, True, axis=1)
        exact = False
    sum_a = members @ pooled
    differences = np.abs((pooled.sum() - sum_a) / (n - k) - sum_a / k)
    # A relative tolerance so that splits equal to the observed one up to rounding count as reaching it.
    reach = differences >= observed - 1e-9 * max(1.0, observed)
    return {"difference": float(y.mean() - x.mean()), "p": float(reach.mean()), "permutations": int(len(members)),
            "exact": exact}


def seed_test(scores_a: Sequence[float], scores_b: Sequence[float], seed: int = 0) -> dict:
    """Both seed-level tests on the per-seed Scores of two groups, with their means and spreads."""
    x, y = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    return {
        "a": {"n": int(x.size), "mean": float(x.mean()), "std": float(x.std(ddof=1))},
        "b": {"n": int(y.size), "mean": float(y.mean()), "std": float(y.std(ddof=1))},
        "welch": welch(x, y),
        "permutation": permutation_test(x, y, seed=seed),
    }
