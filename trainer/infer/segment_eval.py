"""How well found segments match annotated cycles: event-level precision, recall, F1 and boundary error.

A found segment matches a reference cycle when its onset *and* its offset are each within the
tolerance of the cycle's. Matching is one-to-one and of maximum size (augmenting paths over the
candidate pairs, tried in order of error, so among equally many matches the closer pairs win);
a reference cycle matched by nothing is a miss, a segment that matches nothing a false alarm. The
boundary error of a matched pair is the absolute onset and offset error, both counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

TOLERANCES = (0.25, 0.5)

Span = tuple[float, float]


@dataclass
class Match:
    """Counts and matched-pair errors at one tolerance, summed over recordings by :meth:`add`."""

    tolerance: float
    hits: int = 0
    found: int = 0
    reference: int = 0
    errors: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.hits / self.found if self.found else float("nan")

    @property
    def recall(self) -> float:
        return self.hits / self.reference if self.reference else float("nan")

    @property
    def f1(self) -> float:
        total = self.found + self.reference
        return 2.0 * self.hits / total if total else float("nan")

    @property
    def median_error(self) -> float:
        return float(np.median(self.errors)) if self.errors else float("nan")

    def add(self, other: "Match") -> None:
        self.hits += other.hits
        self.found += other.found
        self.reference += other.reference
        self.errors += other.errors

    def summary(self) -> dict:
        """The figures as plain values; an undefined ratio (nothing found, no match) is None, so JSON stays JSON."""
        ratios = {
            "precision": self.precision, "recall": self.recall, "f1": self.f1, "median_boundary_error": self.median_error,
        }
        return {
            "tolerance": self.tolerance, "hits": self.hits, "found": self.found, "reference": self.reference,
            **{key: (None if math.isnan(value) else value) for key, value in ratios.items()},
        }


def match_segments(found: Sequence[Span], reference: Sequence[Span], tolerance: float) -> list[tuple[int, int]]:
    """The one-to-one (found index, reference index) pairs of a maximum matching within ``tolerance``."""
    candidates: dict[int, list[tuple[float, int]]] = {}
    for i, (fs, fe) in enumerate(found):
        for j, (rs, re) in enumerate(reference):
            onset, offset = abs(fs - rs), abs(fe - re)
            if onset <= tolerance + 1e-9 and offset <= tolerance + 1e-9:
                candidates.setdefault(i, []).append((onset + offset, j))
    for options in candidates.values():
        options.sort()
    owner: dict[int, int] = {}  # reference index -> found index

    def augment(i: int, seen: set[int]) -> bool:
        for _, j in candidates.get(i, ()):
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    # Closest pairs first, so a segment with one clear partner takes it before a looser one would.
    for i in sorted(candidates, key=lambda i: candidates[i][0][0]):
        augment(i, set())
    return sorted((i, j) for j, i in owner.items())


def evaluate_segments(found: Sequence[Span], reference: Sequence[Span], tolerance: float) -> Match:
    found = [(float(s), float(e)) for s, e, *_ in found]
    reference = [(float(s), float(e)) for s, e, *_ in reference]
    pairs = match_segments(found, reference, tolerance)
    errors = []
    for i, j in pairs:
        errors += [abs(found[i][0] - reference[j][0]), abs(found[i][1] - reference[j][1])]
    return Match(tolerance, hits=len(pairs), found=len(found), reference=len(reference), errors=errors)


def evaluate_recordings(pairs: Iterable[tuple[Sequence[Span], Sequence[Span]]], tolerances=TOLERANCES) -> dict[float, Match]:
    """Counts summed over recordings (micro-averaged) for each tolerance; ``pairs`` is (found, reference)."""
    totals = {tol: Match(tol) for tol in tolerances}
    for found, reference in pairs:
        for tol in tolerances:
            totals[tol].add(evaluate_segments(found, reference, tol))
    return totals


def format_evaluation(totals: dict[float, Match]) -> str:
    lines = [f"{'tolerance':>9}  {'precision':>9}  {'recall':>6}  {'F1':>5}  {'hits':>5}  {'found':>5}  {'cycles':>6}  median error"]
    for tol, m in sorted(totals.items()):
        lines.append(
            f"{tol:>8.2f}s  {m.precision:>9.3f}  {m.recall:>6.3f}  {m.f1:>5.3f}  {m.hits:>5}  {m.found:>5}  "
            f"{m.reference:>6}  {m.median_error:.3f} s"
        )
    return "\n".join(lines)
