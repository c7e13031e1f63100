"""Collaborative distillation of three representations in one job against the three models trained alone.

    python benchmarks/bench_collab.py                       # synthetic set (24 recordings), 10 epochs: ~3-5 min on 2 cores
    python benchmarks/bench_collab.py --recordings 10 --epochs 2 --channels 2,4,8,16   # a quick look

Both sides train cnn6-tiny on the cnn (log-mel), stft and mfcc feature sets of the same synthetic
project, with the same seed and recipe; the features are computed (and cached) before either clock
starts, so the figures are training alone. It prints the wall (and CPU) time of the lockstep job and of the
three runs one after the other, and each model's test Score alone and collaboratively.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from trainer.data.icbhi import import_icbhi  # noqa: E402
from trainer.data.synth import write_synthetic_dataset  # noqa: E402
from trainer.features import load_features  # noqa: E402
from trainer.project import Project  # noqa: E402
from trainer.train import TrainSpec, create_run, run_training, training_cycles  # noqa: E402
from trainer.train.collab import create_collab_runs, train_collab  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--channels", default="8,16,32,64")
    ap.add_argument("--sets", default="cnn,stft,mfcc")
    ap.add_argument("--peer-weight", type=float, default=1.0)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sets = args.sets.split(",")
    channels = [int(c) for c in args.channels.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-collab-") as tmp:
        data = Path(tmp) / "synth"
        write_synthetic_dataset(data, recordings=args.recordings, seed=0)
        with Project.create(Path(tmp) / "p.rsc") as project:
            import_icbhi(project, data)
            train, test = training_cycles(project)
            started = time.perf_counter()
            for name in sets:
                load_features(project, name, train + test)
            print(f"{len(train)} train / {len(test)} test cycles; features of {len(sets)} sets: "
                  f"{time.perf_counter() - started:.1f} s (cached, outside both figures)", flush=True)

            def spec(name: str, group: str | None = None) -> TrainSpec:
                return TrainSpec(arch="cnn6-tiny", seed=args.seed, group=group, epochs=args.epochs, batch_size=8,
                                 lr=2e-3, device="cpu", spec_augment=False, feature_set=name,
                                 model_args={"channels": channels, "feature_set": name})

            alone, started, cpu = {}, time.perf_counter(), time.process_time()
            for name in sets:
                run_id = create_run(project, spec(name, f"alone-{name}"))
                alone[name] = run_training(project, run_id)["score"]
                print(f"alone {name}: Score {alone[name]:.2f} ({time.perf_counter() - started:.1f} s so far)", flush=True)
            alone_s, alone_cpu = time.perf_counter() - started, time.process_time() - cpu

            started, cpu = time.perf_counter(), time.process_time()
            ids = create_collab_runs(project, [spec(name) for name in sets], args.peer_weight, args.temperature, "collab")
            metrics = train_collab(project, ids)
            collab_s, collab_cpu = time.perf_counter() - started, time.process_time() - cpu
            collab = {name: metrics[run_id]["score"] for name, run_id in zip(sets, ids)}

    print(f"cnn6-tiny channels {channels}, {args.epochs} epochs, seed {args.seed}, {args.threads} threads, "
          f"peer weight {args.peer_weight}, T {args.temperature}")
    print(f"wall time: {len(sets)} alone one after another {alone_s:.1f} s; collaborative, one job {collab_s:.1f} s "
          f"({collab_s / alone_s:.2f}x)")
    # On a shared machine the process's CPU time is the steadier figure (other work does not count in it).
    print(f"CPU time: alone {alone_cpu:.1f} s; collaborative {collab_cpu:.1f} s ({collab_cpu / alone_cpu:.2f}x)")
    print(f"{'set':<6} {'alone':>7} {'collab':>7}")
    for name in sets:
        print(f"{name:<6} {alone[name]:7.2f} {collab[name]:7.2f}")


if __name__ == "__main__":
    main()
