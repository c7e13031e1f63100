"""Speed of the significance tests behind `rsc compare`, on synthetic predictions (no project needed).

    .venv/bin/python benchmarks/bench_compare.py [--cycles 2756] [--resamples 10000] [--runs 5] [--repeat 5]

Prints the best wall-clock time of ``--repeat`` calls (and this process's CPU time) of:

  bootstrap       paired bootstrap of the Score difference between two systems (one prediction each)
  bootstrap mean  the same with each side a group of ``--runs`` runs scored one by one (group:NAME@mean)
  mcnemar         McNemar's test on hits and misses
  calibration     ECE and the reliability bins of 4-class probabilities

The ICBHI official test split has 2,756 cycles.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.results.calibration import calibration, softmax  # noqa: E402
from trainer.results.significance import mcnemar, paired_bootstrap  # noqa: E402


def best_of(repeat: int, work) -> tuple[float, float]:
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        work()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=2756)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, args.cycles)
    labels[: args.cycles // 2] = 0

    def predictions(accuracy: float, shape) -> np.ndarray:
        guess = rng.integers(0, 4, shape)
        truth = labels if len(shape) == 1 else labels[:, None]
        return np.where(rng.random(shape) < accuracy, truth, guess)

    hits_a = predictions(0.55, (args.cycles,)) == labels
    hits_b = predictions(0.60, (args.cycles,)) == labels
    group_a = predictions(0.55, (args.cycles, args.runs)) == labels[:, None]
    group_b = predictions(0.60, (args.cycles, args.runs)) == labels[:, None]
    logits = rng.normal(size=(args.cycles, 4)) + 2.0 * np.eye(4)[labels]

    print(f"load average {os.getloadavg()[0]:.2f}; {args.cycles} cycles, {args.resamples} resamples, "
          f"best of {args.repeat}")
    cases = [
        ("bootstrap", lambda: paired_bootstrap(labels, hits_a, hits_b, args.resamples, seed=0)),
        (f"bootstrap mean ({args.runs}+{args.runs} runs)",
         lambda: paired_bootstrap(labels, group_a, group_b, args.resamples, seed=0)),
        ("mcnemar", lambda: mcnemar(hits_a, hits_b)),
        ("calibration", lambda: calibration(softmax(logits), labels, bins=10)),
    ]
    for name, work in cases:
        wall, cpu = best_of(args.repeat, work)
        print(f"{name:<28} {1000 * wall:9.2f} ms wall  {1000 * cpu:9.2f} ms CPU")
    result = paired_bootstrap(labels, hits_a, hits_b, args.resamples, seed=0)
    print(f"(Score B - A {result['difference']:+.2f}, 95% interval [{result['low']:+.2f}, {result['high']:+.2f}], "
          f"p = {result['p']:.4f})")


if __name__ == "__main__":
    main()
