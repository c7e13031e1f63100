"""CPU training throughput of full-size CNN6 and EfficientNet-B0, against the machine's own matmul peak;
with ``--epoch``, the time of one training epoch of the small models (-tiny and low-complexity).

    python benchmarks/bench_train_cpu.py            # default run: about 2-3 minutes on 2 cores
    python benchmarks/bench_train_cpu.py --threads 4 --batch 8 --steps 3
    python benchmarks/bench_train_cpu.py --epoch    # cnn6-tiny, cpmobile-s, cpmobile-m: one epoch of 1,000 cycles

``--epoch`` runs the trainer's own epoch (``FitLoop.train_epoch``: the batch order or the balanced
sampler, batched SpecAugment, forward, backward, Adam) with each model's resolved default recipe, on
1,000 synthetic cycles of the real shape (random features, labels in ICBHI proportions): the time is
the arithmetic's, the numbers are not. A model whose epoch would exceed ``--epoch-budget`` seconds is
timed on a prefix of the epoch and scaled, and says so. ``--repeats`` epochs per model; the best and
the median are printed (the machine may be shared), with the matmul throughput read between epochs.

What it prints:
1. the machine's dense fp32 throughput, measured in this run: a large ``torch.mm`` and the same GEMM
   as a 1x1 convolution (oneDNN), read between every two model steps so both see the same load; the
   best reading counts as the peak. On a shared machine the wall-clock fraction is only as good as
   the quietest moments of both; the fraction per CPU-second (process time) discounts the time
   slices taken by other processes and is the steadier figure;
2. for each model, training samples/s (forward, backward and Adam step on random (B, 798, 128)
   features: 8 s cycles, 128 mel bins) in the default and in channels-last memory format, the
   training FLOPs per sample (2 x 3 x forward MACs, MACs counted by trainer.models.macs) and the
   fraction of the matmul peak they reach;
3. the data pipeline's time per step at the reference batch size (128): ours (precomputed features
   in memory, tensor indexing and batched SpecAugment) against a reference-style pipeline (per-sample
   Kaldi filterbank from the waveform inside a torch DataLoader with per-sample SpecAugment, as the
   reference code does), both serial (num_workers=0) so the number is what each adds to a step.

Step times are the minimum over timed steps, after one warm-up step: on a shared machine the
minimum is the reading least disturbed by other work.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRAMES, BINS, SAMPLE_RATE, SECONDS = 798, 128, 16000, 8.0


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


class MatmulProbe:
    """fp32 GEMM throughput, read between model steps so both see the same machine load.

    Each reading runs an n x n x n product as torch.mm (MKL) and as a 1x1 convolution (oneDNN); the
    best wall-clock rate and the best rate per CPU-second over all readings count as the machine's peak.
    """

    def __init__(self, n: int):
        self.n = n
        self.a, self.b = torch.randn(n, n), torch.randn(n, n)
        self.x, self.w = torch.randn(1, n, 16, n // 16), torch.randn(n, n, 1, 1)
        self.flop = 2 * n**3
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.by_kind = {"mm": 0.0, "conv1x1": 0.0}
        self.read()  # warm-up reading (also counts)

    def read(self) -> None:
        for kind, fn in (("mm", lambda: self.a @ self.b), ("conv1x1", lambda: F.conv2d(self.x, self.w))):
            wall, cpu = timed(fn)
            self.wall.append(self.flop / wall / 1e9)
            self.cpu.append(self.flop / cpu / 1e9 if cpu > 0 else 0.0)
            self.by_kind[kind] = max(self.by_kind[kind], self.wall[-1])

    @property
    def peak(self) -> float:
        return max(self.wall)

    @property
    def peak_per_cpu_s(self) -> float:
        return max(self.cpu)


def train_step_rate(arch: str, batch: int, steps: int, channels_last: bool, probe: MatmulProbe) -> dict:
    from trainer.models import create_model
    from trainer.models.macs import count_macs

    torch.manual_seed(0)
    model = create_model(arch, num_classes=4)
    macs = count_macs(model, torch.zeros(1, FRAMES, BINS))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6)
    x = torch.randn(batch, FRAMES, BINS)
    y = torch.randint(0, 4, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    step()  # warm-up: allocations, oneDNN primitive creation
    walls, cpus = [], []
    for _ in range(steps):
        probe.read()
        wall, cpu = timed(step)
        walls.append(wall)
        cpus.append(cpu)
    probe.read()
    flop = 6 * macs * batch
    return {"arch": arch, "channels_last": channels_last, "batch": batch, "step_s": min(walls),
            "samples_per_s": batch / min(walls), "train_gflop_per_sample": 6 * macs / 1e9,
            "gflops": flop / min(walls) / 1e9, "gflop_per_cpu_s": flop / min(cpus) / 1e9}


# -- one epoch of the small models ----------------------------------------------------------------
ICBHI_SHARES = (0.53, 0.27, 0.13, 0.07)  # normal, crackle, wheeze, both in the ICBHI training split


def epoch_loop(arch: str, cycles: int, batch: int | None, channels_last: bool):
    """A FitLoop over ``cycles`` synthetic cycles with the arch's resolved default recipe."""
    from trainer.models import create_model
    from trainer.train.checkpoint import LoopState
    from trainer.train.data import TrainData
    from trainer.train.determinism import GLOBAL_STREAM, epoch_seed
    from trainer.train.hooks import Hooks
    from trainer.train.loop import FitLoop
    from trainer.train.spec import TrainSpec
    from trainer.train.tasks import HardLabelTask

    spec = TrainSpec(arch=arch, device="cpu", batch_size=batch).resolved()
    torch.manual_seed(epoch_seed(spec.seed, 0, GLOBAL_STREAM))
    model = create_model(arch, num_classes=4)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(0)
    labels = torch.multinomial(torch.tensor(ICBHI_SHARES), cycles, replacement=True, generator=gen)
    data = TrainData([], [], x_all=torch.randn(cycles, FRAMES, BINS, generator=gen), x_test=torch.zeros(0, FRAMES, BINS),
                     y_all=labels, y_test=torch.zeros(0, dtype=torch.long), fit_pos=torch.arange(cycles),
                     val_pos=torch.zeros(0, dtype=torch.long))
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    loop = FitLoop(run_id="bench", spec=spec, model=model, optimizer=optimizer, scaler=scaler, task=HardLabelTask(),
                   data=data, device=torch.device("cpu"), hooks=Hooks(), checkpoint=None, state=LoopState())
    return loop, spec


def epoch_times(arch: str, cycles: int, batch: int | None, repeats: int, budget: float, channels_last: bool,
                probe: MatmulProbe) -> dict:
    from trainer.models import model_info

    loop, spec = epoch_loop(arch, min(cycles, 4 * (batch or 8)), batch, channels_last)
    loop.train_epoch()  # warm-up on a few batches: allocations, oneDNN primitives
    wall, _ = timed(loop.train_epoch)
    estimate = wall * cycles / len(loop.data.fit_pos)
    measured = cycles if estimate <= budget else max(2 * spec.batch_size, int(cycles * budget / estimate))
    loop, spec = epoch_loop(arch, measured, batch, channels_last)
    walls, cpus = [], []
    for _ in range(repeats):
        probe.read()
        wall, cpu = timed(loop.train_epoch)
        walls.append(wall * cycles / measured)
        cpus.append(cpu * cycles / measured)
        loop.state.epoch += 1  # the next epoch's streams, as in a run
    probe.read()
    macs = model_info(arch)["macs_per_cycle"]
    best = min(walls)
    return {"arch": arch, "batch": spec.batch_size, "balance": spec.balance, "spec_augment": spec.spec_augment,
            "channels_last": channels_last, "macs": macs, "params": model_info(arch)["params"], "best_s": best,
            "median_s": float(np.median(walls)), "cpu_s": min(cpus), "measured": measured, "samples_per_s": cycles / best,
            "gflops": 6 * macs * cycles / best / 1e9}


def epoch_main(args) -> int:
    from trainer.train.memory import keep_freed_memory

    keep_freed_memory()  # as run_training does in every training process
    probe = MatmulProbe(args.matmul_n)
    rows = []
    for arch in [m.strip() for m in args.models.split(",") if m.strip()]:
        for channels_last in ((False, True) if args.channels_last else (False,)):
            r = epoch_times(arch, args.cycles, args.batch, args.repeats, args.epoch_budget, channels_last, probe)
            rows.append(r)
            print(f"  {arch:<14} {'channels_last' if channels_last else 'contiguous'}: best {r['best_s']:.1f} s, "
                  f"median {r['median_s']:.1f} s per {args.cycles} cycles", flush=True)
    peak = probe.peak
    print(f"\nfp32 matmul n={args.matmul_n}: best {peak:.1f} GFLOP/s (torch.mm {probe.by_kind['mm']:.1f}, 1x1 conv "
          f"{probe.by_kind['conv1x1']:.1f}), median {float(np.median(probe.wall)):.1f} over {len(probe.wall)} readings")
    print(f"one epoch over {args.cycles} synthetic cycles ({FRAMES} x {BINS}), {args.repeats} epochs each, "
          f"{args.threads} threads:")
    print(f"{'model':<14} {'format':<13} {'batch':>5} {'balance':>8} {'SpecAug':>7} {'params':>8} {'MMAC/cyc':>9} "
          f"{'MMAC/s':>7} {'best s':>7} {'median s':>8} {'CPU s':>6} {'samples/s':>9} {'GFLOP/s':>8} {'of mm':>6}")
    for r in rows:
        scaled = "" if r["measured"] == args.cycles else f"  (timed on {r['measured']} cycles, scaled)"
        print(f"{r['arch']:<14} {'chan_last' if r['channels_last'] else 'contiguous':<13} {r['batch']:>5} "
              f"{r['balance']:>8} {str(r['spec_augment']):>7} {r['params'] / 1e3:>7.1f}K {r['macs'] / 1e6:>9.1f} "
              f"{r['macs'] / SECONDS / 1e6:>7.1f} {r['best_s']:>7.1f} {r['median_s']:>8.1f} {r['cpu_s']:>6.1f} "
              f"{r['samples_per_s']:>9.1f} "
              f"{r['gflops']:>8.2f} {100 * r['gflops'] / peak:>5.1f}%{scaled}")
    print("(training FLOPs = 2 x 3 x forward MACs; MACs counted by trainer.models.macs, as `rsc models`; "
          "MMAC/s per second of audio, an 8-s cycle; CPU s: the best epoch's CPU time of this process, all threads, "
          f"which on an idle machine is about {args.threads} x its wall time and does not count time slices taken by "
          "other processes)")
    return 0


# -- data pipelines ------------------------------------------------------------------------------
class ReferenceStyleDataset(torch.utils.data.Dataset):
    """Waveforms in memory; each item computes its filterbank and SpecAugment on its own (the reference way)."""

    def __init__(self, waves: np.ndarray, labels: np.ndarray, seed: int = 0):
        self.waves, self.labels = waves, labels
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.waves)

    def __getitem__(self, i):
        from trainer.features import kaldi_fbank

        # torchaudio's kaldi.fbank computes in float32; the reference applied it to one cycle at a time.
        fbank = kaldi_fbank(torch.from_numpy(self.waves[i]), fft_dtype=torch.float32)
        fbank = (fbank - fbank.mean()) / (2 * fbank.std())
        fill = fbank.mean()
        for _ in range(2):  # two frequency masks up to 48 bins
            width = int(self.rng.integers(0, 49))
            start = int(self.rng.integers(0, BINS - width + 1))
            fbank[:, start : start + width] = fill
        for _ in range(2):  # two time masks up to 160 frames
            width = int(self.rng.integers(0, 161))
            start = int(self.rng.integers(0, fbank.shape[0] - width + 1))
            fbank[start : start + width, :] = fill
        return fbank, int(self.labels[i])


def pipeline_times(batch: int, repeats: int) -> dict:
    from trainer.features import spec_augment

    rng = np.random.default_rng(0)
    samples = int(SAMPLE_RATE * SECONDS)
    waves = (rng.standard_normal((batch, samples)) * 0.1).astype(np.float32)
    labels = rng.integers(0, 4, batch)
    loader = torch.utils.data.DataLoader(ReferenceStyleDataset(waves, labels), batch_size=batch, shuffle=True,
                                         num_workers=0)

    def reference_batch():
        for xb, yb in loader:
            assert xb.shape == (batch, FRAMES, BINS)

    reference_batch()  # warm-up (filterbank tables, allocator)
    reference = [timed(reference_batch) for _ in range(repeats)]

    features = torch.randn(2 * batch, FRAMES, BINS)
    targets = torch.randint(0, 4, (2 * batch,))
    gen = torch.Generator().manual_seed(0)

    def ours_batch():
        index = torch.randperm(len(features), generator=gen)[:batch]
        xb = spec_augment(features[index], generator=gen)
        yb = targets[index]
        assert xb.shape == (batch, FRAMES, BINS) and yb.shape == (batch,)

    ours_batch()
    ours = [timed(ours_batch) for _ in range(repeats)]
    return {"batch": batch, "reference_s": min(w for w, _ in reference), "ours_s": min(w for w, _ in ours),
            "reference_cpu_s": min(c for _, c in reference), "ours_cpu_s": min(c for _, c in ours)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1),
                        help="torch threads (default 2: the machine is shared)")
    parser.add_argument("--batch", type=int, default=None, help="training batch (default: cnn6 4, efficientnet_b0 8)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per model and format (after one warm-up)")
    parser.add_argument("--models", default="cnn6,efficientnet_b0")
    parser.add_argument("--pipeline-batch", type=int, default=128, help="batch of the data pipeline comparison (reference: 128)")
    parser.add_argument("--matmul-n", type=int, default=2048)
    parser.add_argument("--epoch", action="store_true", help="time one training epoch of the small models instead")
    parser.add_argument("--cycles", type=int, default=1000, help="--epoch: cycles per epoch (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="--epoch: epochs per model (default 3)")
    parser.add_argument("--epoch-budget", type=float, default=60.0,
                        help="--epoch: time at most about this many seconds per epoch, scaling up from a prefix")
    parser.add_argument("--channels-last", action="store_true", help="--epoch: also time channels-last weights")
    args = parser.parse_args(argv)
    if args.epoch and args.models == parser.get_default("models"):
        args.models = "cnn6-tiny,cpmobile-s,cpmobile-m"
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?") \
        if os.path.exists("/proc/cpuinfo") else "?"
    print(f"torch {torch.__version__}, {args.threads} threads, CPU: {cpu}, {os.cpu_count()} logical CPUs", flush=True)
    if args.epoch:
        code = epoch_main(args)
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
        return code

    probe = MatmulProbe(args.matmul_n)
    results = []
    default_batch = {"cnn6": 4, "efficientnet_b0": 8}
    for arch in [m.strip() for m in args.models.split(",") if m.strip()]:
        batch = args.batch or default_batch.get(arch, 8)
        for channels_last in (False, True):
            r = train_step_rate(arch, batch, args.steps, channels_last, probe)
            results.append(r)
            print(f"  {arch:<16} {'channels_last' if channels_last else 'contiguous':<14} batch {batch}: "
                  f"{r['samples_per_s']:.3f} samples/s ({r['step_s']:.2f} s/step, {r['gflops']:.1f} GFLOP/s)", flush=True)
    peak, peak_cpu = probe.peak, probe.peak_per_cpu_s
    print(f"fp32 GEMM n={args.matmul_n}, {len(probe.wall)} readings between the steps: best torch.mm "
          f"{probe.by_kind['mm']:.1f}, best 1x1 conv {probe.by_kind['conv1x1']:.1f} GFLOP/s; median "
          f"{float(np.median(probe.wall)):.1f} GFLOP/s (the spread is other work on this shared machine)", flush=True)

    pipe = pipeline_times(args.pipeline_batch, repeats=3)

    print()
    print(f"{'model':<16} {'format':<14} {'batch':>5} {'samples/s':>10} {'GFLOP/sample':>13} {'GFLOP/s':>8} "
          f"{'of peak':>8} {'per CPU-s':>10}")
    for r in results:
        print(f"{r['arch']:<16} {'channels_last' if r['channels_last'] else 'contiguous':<14} {r['batch']:>5} "
              f"{r['samples_per_s']:>10.3f} {r['train_gflop_per_sample']:>13.1f} {r['gflops']:>8.1f} "
              f"{100 * r['gflops'] / peak:>7.1f}% {100 * r['gflop_per_cpu_s'] / peak_cpu:>9.1f}%")
    print(f"(of peak: best wall-clock GFLOP/s against the best GEMM reading, {peak:.1f} GFLOP/s; per CPU-s: the same "
          f"per second of this process's CPU time, {peak_cpu:.1f} GFLOP per CPU-s for the GEMM, which discounts time "
          "slices lost to other processes; training FLOPs = 2 x 3 x forward MACs)")
    print()
    cnn6 = [r for r in results if r["arch"] == "cnn6"]
    step_at_batch = (pipe["batch"] / max(r["samples_per_s"] for r in cnn6)) if cnn6 else math.nan
    print(f"data pipeline per step (batch {pipe['batch']}, serial):")
    print(f"  reference-style (per-sample fbank + SpecAugment in a DataLoader): {1000 * pipe['reference_s']:9.1f} ms "
          f"({1000 * pipe['reference_cpu_s']:.1f} ms CPU)")
    print(f"  ours (precomputed features, indexing + batched SpecAugment):      {1000 * pipe['ours_s']:9.1f} ms "
          f"({1000 * pipe['ours_cpu_s']:.1f} ms CPU)")
    line = (f"  ratio {pipe['reference_s'] / pipe['ours_s']:.1f}x wall, "
            f"{pipe['reference_cpu_s'] / pipe['ours_cpu_s']:.1f}x CPU")
    if math.isfinite(step_at_batch):
        line += (f"; ours adds {100 * pipe['ours_s'] / step_at_batch:.2f} % to a CNN6 step of that batch here "
                 f"({step_at_batch:.0f} s), reference-style adds {100 * pipe['reference_s'] / step_at_batch:.1f} %")
    print(line)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
