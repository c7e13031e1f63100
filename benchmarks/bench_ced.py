"""Consistent ensemble distillation on the synthetic set: teacher passes (views/s), storage, and what a student learns.

    .venv/bin/python benchmarks/bench_ced.py [--passes 4] [--threads 2]

Two cnn6-tiny teachers (channels 8-16-32-64, the -tiny recipe) are trained on the 24-recording synthetic
set, run over N seeded views of every training cycle (`rsc logits`), and a label-free cnn6-tiny student
learns from the stored views (`rsc distill --mode ced`). Prints the teachers' and the student's Score, the
views per second of the passes (and what 1,000 cycles x 4 views take at that rate), and the bytes stored per
cycle and view against the cached features of one cycle.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from trainer.data.icbhi import import_icbhi
from trainer.data.synth import write_synthetic_dataset
from trainer.project import Project
from trainer.train import TrainSpec, create_run, run_training
from trainer.train.logit_passes import passes_name, run_passes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(tempfile.mkdtemp(prefix="bench-ced-"))
    write_synthetic_dataset(folder / "synth", recordings=24, seed=0)
    with Project.create(folder / "p.rsc") as project:
        import_icbhi(project, folder / "synth")
        common = dict(arch="cnn6-tiny", epochs=10, batch_size=8, lr=2e-3, device="cpu",
                      model_args={"channels": [8, 16, 32, 64]})
        teachers = []
        for seed in (1, 2):
            started = time.perf_counter()
            run_id = create_run(project, TrainSpec(seed=seed, group="teachers", spec_augment=False, **common))
            metrics = run_training(project, run_id)
            teachers.append(run_id)
            print(f"teacher seed {seed}: Score {metrics['score']:.2f} ({time.perf_counter() - started:.0f} s)")
        _, figures = run_passes(project, "teachers", passes=args.passes)
        rate = figures["views_per_s"]
        print(f"passes: {figures['views']} views of {figures['cycles']} cycles by {len(teachers)} teachers in "
              f"{figures['seconds']:.1f} s = {rate} views/s ({rate / len(teachers):.1f} per teacher); "
              f"1,000 cycles x 4 views: {4000 / rate:.0f} s")
        print(f"stored: {figures['bytes_per_view']} bytes per cycle and view ({figures['file_bytes']:,} bytes in all); "
              f"cached features: {figures['feature_bytes_per_cycle']:,} bytes per cycle")
        targets = {"kind": "soft", "teachers": teachers, "mode": "ced",
                   "passes": passes_name("teachers", args.passes, 0)}
        started = time.perf_counter()
        run_id = create_run(project, TrainSpec(seed=1, group="ced-students", targets=targets, **common))
        metrics = run_training(project, run_id)
        print(f"label-free CED student: Score {metrics['score']:.2f} (Sp {metrics['sp']:.1f}, Se {metrics['se']:.1f}; "
              f"{time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
