"""GPU training throughput: our pipeline against a reference-style one, and 5 CNN6 teachers in one step.

    python benchmarks/bench_train_gpu.py                 # on a CUDA machine: about 5-7 minutes
    python benchmarks/bench_train_gpu.py --smoke         # CPU, tiny models: checks the code paths only

What it prints (each figure measured in this run, on this GPU):
1. CNN6 training samples/s and mean GPU utilisation (batch 128, the paper's setting):
   - ours: the training set's features resident on the GPU, a batch is a GPU gather plus batched
     SpecAugment on the GPU, no host work per step; fp32 (TF32) and bf16 autocast + channels-last;
   - reference-style: per-sample Kaldi filterbank and SpecAugment computed by DataLoader workers on the
     CPU from the waveforms (the reference code's way), pinned and copied to the GPU every step.
2. AST training samples/s and utilisation the same two ways (batch 8, fp16 autocast, the paper's
   setting), AST randomly initialised at full size (throughput does not depend on the weights).
3. 5 CNN6 teachers trained together in one batched step (trainer.train.stacked: stacked weights, vmap, which
   lowers each convolution to one grouped convolution), each with its own batch, against the step of
   one CNN6: wall time per step and the ratio (target: at most 2x the time of one).

GPU utilisation is the driver's "percent of time a kernel was running", sampled every 50 ms
(torch.cuda.utilization(), i.e. NVML) while the timed steps run.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRAMES, BINS, SAMPLE_RATE, SECONDS = 798, 128, 16000, 8.0


class UtilSampler:
    """Mean GPU utilisation over a window, from NVML (torch.cuda.utilization) or nvidia-smi."""

    def __init__(self, device: torch.device, interval: float = 0.05):
        self.device, self.interval = device, interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.source = None
        if device.type == "cuda":
            try:
                torch.cuda.utilization(device)
                self.source = "nvml"
            except Exception:
                import shutil

                self.source = "nvidia-smi" if shutil.which("nvidia-smi") else None

    def _read(self) -> float | None:
        if self.source == "nvml":
            return float(torch.cuda.utilization(self.device))
        if self.source == "nvidia-smi":
            import subprocess

            index = self.device.index or 0
            out = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5)
            return float(out.stdout.strip().splitlines()[0])
        return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            value = self._read()
            if value is not None:
                self.samples.append(value)
            self._stop.wait(self.interval)

    def __enter__(self) -> "UtilSampler":
        self.samples.clear()
        if self.source:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.samples)) if self.samples else None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- batches ---------------------------------------------------------------------------------------
class ReferenceStyleDataset(torch.utils.data.Dataset):
    """Waveforms in host memory; each item computes its own filterbank, normalisation and SpecAugment."""

    def __init__(self, waves: np.ndarray, labels: np.ndarray, norm: str, spec_augment: bool = True):
        self.waves, self.labels, self.norm, self.augment = waves, labels, norm, spec_augment

    def __len__(self) -> int:
        return len(self.waves)

    def __getitem__(self, i):
        from trainer.features import kaldi_fbank

        torch.set_num_threads(1)
        rng = np.random.default_rng((os.getpid(), i, time.perf_counter_ns()))
        fbank = kaldi_fbank(torch.from_numpy(self.waves[i]), fft_dtype=torch.float32)
        if self.norm == "ast":
            fbank = (fbank + 4.2677393) / (2 * 4.5689974)
        else:
            fbank = (fbank - fbank.mean()) / (2 * fbank.std())
        if self.augment:
            fill = fbank.mean()
            for _ in range(2):
                width = int(rng.integers(0, 49))
                start = int(rng.integers(0, BINS - width + 1))
                fbank[:, start : start + width] = fill
            for _ in range(2):
                width = int(rng.integers(0, 161))
                start = int(rng.integers(0, fbank.shape[0] - width + 1))
                fbank[start : start + width, :] = fill
        return fbank, int(self.labels[i])


def reference_batches(waves, labels, batch: int, workers: int, norm: str, device: torch.device):
    loader = torch.utils.data.DataLoader(
        ReferenceStyleDataset(waves, labels, norm), batch_size=batch, shuffle=True, drop_last=True,
        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
    )
    while True:
        for xb, yb in loader:
            yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)


def our_batches(n: int, batch: int, device: torch.device, seed: int = 0):
    from trainer.features import spec_augment

    gen = torch.Generator(device=device).manual_seed(seed)
    features = torch.randn(n, FRAMES, BINS, device=device, generator=gen)
    labels = torch.randint(0, 4, (n,), device=device, generator=gen)
    while True:
        order = torch.randperm(n, device=device, generator=gen)
        for start in range(0, n - batch + 1, batch):
            index = order[start : start + batch]
            yield spec_augment(features[index], generator=gen), labels[index]


# -- training steps ----------------------------------------------------------------------------------
def make_step(model, device: torch.device, precision: str, channels_last: bool):
    model.to(device).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-6, fused=device.type == "cuda")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16" and device.type == "cuda")

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step


def measure(step, batches, device: torch.device, seconds: float, warmup: int, batch: int) -> dict:
    for _ in range(warmup):
        step(*next(batches))
    sync(device)
    sampler = UtilSampler(device)
    steps = 0
    with sampler:
        t0 = time.perf_counter()
        while True:
            step(*next(batches))
            steps += 1
            if steps % 4 == 0:
                sync(device)
                if time.perf_counter() - t0 >= seconds:
                    break
        sync(device)
        elapsed = time.perf_counter() - t0
    return {"samples_per_s": steps * batch / elapsed, "step_ms": 1000 * elapsed / steps, "steps": steps,
            "util": sampler.mean}


def fmt_util(value) -> str:
    return "n/a" if value is None else f"{value:5.1f} %"


def bench_pipeline(arch: str, batch: int, precision_ours: list[tuple[str, bool]], precision_ref: tuple[str, bool],
                   norm: str, args, device: torch.device) -> list[dict]:
    from trainer.models import create_model

    rows = []
    for precision, channels_last in precision_ours:
        torch.manual_seed(0)
        step = make_step(create_model(arch), device, precision, channels_last)
        r = measure(step, our_batches(args.n_features, batch, device), device, args.seconds, args.warmup, batch)
        rows.append({"arch": arch, "pipeline": "ours", "precision": precision, "channels_last": channels_last,
                     "batch": batch, **r})
        print(f"  {arch} ours {precision}{' channels_last' if channels_last else ''}: {r['samples_per_s']:.1f} samples/s, "
              f"util {fmt_util(r['util'])}", flush=True)
        del step
        if device.type == "cuda":
            torch.cuda.empty_cache()
    rng = np.random.default_rng(0)
    waves = (rng.standard_normal((args.n_waves, int(SAMPLE_RATE * SECONDS))) * 0.1).astype(np.float32)
    labels = rng.integers(0, 4, args.n_waves)
    precision, channels_last = precision_ref
    torch.manual_seed(0)
    step = make_step(create_model(arch), device, precision, channels_last)
    batches = reference_batches(waves, labels, batch, args.workers, norm, device)
    r = measure(step, batches, device, args.seconds, args.warmup, batch)
    rows.append({"arch": arch, "pipeline": f"reference-style ({args.workers} workers)", "precision": precision,
                 "channels_last": channels_last, "batch": batch, **r})
    print(f"  {arch} reference-style {precision}: {r['samples_per_s']:.1f} samples/s, util {fmt_util(r['util'])}", flush=True)
    del batches, step
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def bench_multi(args, device: torch.device) -> dict:
    """Step time of k CNN6 models stacked (each with its own batch) against one CNN6."""
    from trainer.models import create_model
    from trainer.train.stacked import StackedModels, stacked_loss

    k, batch = args.teachers, args.batch_cnn
    dtype = torch.bfloat16 if args.multi_precision == "bf16" else None
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(k, batch, FRAMES, BINS, device=device, generator=gen)
    y = torch.randint(0, 4, (k, batch), device=device, generator=gen)

    torch.manual_seed(0)
    single = create_model(args.cnn).to(device).train()
    opt1 = torch.optim.Adam(single.parameters(), lr=1e-4, fused=device.type == "cuda")

    def one_step():
        opt1.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = F.cross_entropy(single(x[0]), y[0])
        loss.backward()
        opt1.step()

    models = []
    for i in range(k):
        torch.manual_seed(i)
        models.append(create_model(args.cnn))
    stacked = StackedModels(models).to(device)
    optk = torch.optim.Adam(stacked.parameters(), lr=1e-4, fused=device.type == "cuda")

    def k_step():
        optk.zero_grad(set_to_none=True)
        stacked.train()
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = stacked_loss(stacked(x).float(), y)
        loss.backward()
        optk.step()

    def timed(fn) -> tuple[float, float | None]:
        for _ in range(args.warmup):
            fn()
        sync(device)
        sampler = UtilSampler(device)
        steps = 0
        with sampler:
            t0 = time.perf_counter()
            while steps < 3 or time.perf_counter() - t0 < args.seconds / 2:
                fn()
                steps += 1
                sync(device)
            elapsed = time.perf_counter() - t0
        return elapsed / steps, sampler.mean

    t1, u1 = timed(one_step)
    tk, uk = timed(k_step)
    return {"k": k, "batch": batch, "precision": args.multi_precision, "one_ms": 1000 * t1, "k_ms": 1000 * tk,
            "ratio": tk / t1, "one_util": u1, "k_util": uk}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny models, short windows: a check of the code paths")
    parser.add_argument("--seconds", type=float, default=15.0, help="timed window per configuration (default 15)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="reference DataLoader workers")
    parser.add_argument("--batch-cnn", type=int, default=128)
    parser.add_argument("--batch-ast", type=int, default=8)
    parser.add_argument("--teachers", type=int, default=5)
    parser.add_argument("--multi-precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--n-features", type=int, default=1024, help="cycles of resident features (ours)")
    parser.add_argument("--n-waves", type=int, default=512, help="waveforms held by the reference-style dataset")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: cnn6, ast, multi")
    args = parser.parse_args(argv)
    args.cnn, args.ast = "cnn6", "ast"
    if args.smoke:
        device = torch.device("cpu")
        torch.set_num_threads(2)
        args.cnn, args.ast = "cnn6-tiny", "ast-tiny"
        args.seconds, args.warmup, args.workers = 1.0, 1, 0
        args.batch_cnn, args.batch_ast, args.n_features, args.n_waves = 4, 2, 16, 8
        args.teachers = min(args.teachers, 3)
    elif not torch.cuda.is_available():
        print("bench_train_gpu: no CUDA device here; nothing measured (use --smoke to check the code paths on CPU)")
        return 0
    else:
        device = torch.device("cuda")
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (smoke run)"
    print(f"torch {torch.__version__}, device {name}, {os.cpu_count()} CPUs, reference workers {args.workers}", flush=True)

    rows = []
    if "cnn6" not in skip:
        rows += bench_pipeline(args.cnn, args.batch_cnn, [("fp32", False), ("bf16", True)], ("fp32", False),
                               "per_sample", args, device)
    if "ast" not in skip:
        precision = "fp16" if device.type == "cuda" else "fp32"
        rows += bench_pipeline(args.ast, args.batch_ast, [(precision, False)], (precision, False), "ast", args, device)
    multi = None if "multi" in skip else bench_multi(args, device)

    print()
    print(f"{'model':<10} {'pipeline':<28} {'precision':<18} {'batch':>5} {'samples/s':>10} {'step ms':>9} {'GPU util':>9}")
    for r in rows:
        prec = r["precision"] + (" channels_last" if r["channels_last"] else "")
        print(f"{r['arch']:<10} {r['pipeline']:<28} {prec:<18} {r['batch']:>5} {r['samples_per_s']:>10.1f} "
              f"{r['step_ms']:>9.1f} {fmt_util(r['util']):>9}")
    for arch in (args.cnn, args.ast):
        ours = [r for r in rows if r["arch"] == arch and r["pipeline"] == "ours"]
        ref = [r for r in rows if r["arch"] == arch and r["pipeline"] != "ours"]
        if ours and ref:
            best = max(ours, key=lambda r: r["samples_per_s"])
            same = [r for r in ours if (r["precision"], r["channels_last"]) == (ref[0]["precision"], ref[0]["channels_last"])]
            line = f"{arch}: ours (best) / reference-style = {best['samples_per_s'] / ref[0]['samples_per_s']:.1f}x"
            if same:
                line += f"; same precision: {same[0]['samples_per_s'] / ref[0]['samples_per_s']:.1f}x"
            print(line)
    if multi:
        print(f"\n{multi['k']} {args.cnn} teachers in one batched step ({multi['precision']}, batch {multi['batch']} each): "
              f"{multi['k_ms']:.1f} ms/step (util {fmt_util(multi['k_util'])}) against one: {multi['one_ms']:.1f} ms/step "
              f"(util {fmt_util(multi['one_util'])}): {multi['ratio']:.2f}x the time of one for {multi['k']}x the work "
              f"(target <= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
