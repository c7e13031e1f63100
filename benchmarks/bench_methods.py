"""Every distillation method of the seed papers on one project, side by side in `rsc report`.

    .venv/bin/python benchmarks/bench_methods.py [--seeds 1-2] [--threads 2] [--keep DIR]

On the 24-recording synthetic set, through the command line a user types: two cnn6-tiny teachers
(channels 8-16-32-64, the -tiny recipe), then from them, each over the same seeds: a paper-001 mean
student (`--mode mean`), a label-free CED student (`--mode ced`, its views made by the first student),
a low-complexity cpmobile-s student with joint feature + output KD (`--preset cp-jku --feature-weight 1`,
the CPU recipe), and a collaborative job of log-mel, STFT and MFCC models (`--mode collab`). Prints each
step's wall time and the report (protocol, parameters, MACs, mean +- std over seeds).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from trainer.cli import main as rsc

TINY = ["--model-arg", "channels=8,16,32,64"]


def step(name: str, args: list[str]) -> None:
    started = time.perf_counter()
    code = rsc(args)
    print(f"== {name}: {time.perf_counter() - started:.0f} s (exit {code})", flush=True)
    if code != 0:
        raise SystemExit(f"{name} failed: rsc {' '.join(args)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1-2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="folder to keep the project in (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-methods-"))
    folder.mkdir(parents=True, exist_ok=True)
    project = str(folder / "methods.rsc")
    seeds = ["--seeds", args.seeds, "--device", "cpu", "--quiet"]
    step("synthetic set", ["synth", str(folder / "synth"), "--recordings", "24", "--seed", "0"])
    step("import", ["import", "icbhi", project, str(folder / "synth")])
    step("teachers", ["train", project, "--arch", "cnn6-tiny", *TINY, "--group", "teachers", *seeds])
    step("mean student (paper 001)", ["distill", project, "--teachers", "teachers", "--mode", "mean", "--arch",
                                      "cnn6-tiny", *TINY, "--group", "mean-students", *seeds])
    step("label-free CED student (paper 003)", ["distill", project, "--teachers", "teachers", "--mode", "ced",
                                                 "--passes", "4", "--arch", "cnn6-tiny", *TINY,
                                                 "--group", "ced-students", *seeds])
    step("feature + output KD into cpmobile-s (paper 004)", [
        "distill", project, "--teachers", "teachers", "--mode", "mean", "--preset", "cp-jku", "--feature-weight", "1",
        "--arch", "cpmobile-s", "--group", "fkd-cpmobile-s", *seeds])
    step("collaborative log-mel + STFT + MFCC (paper 002)", [
        "distill", project, "--mode", "collab", "--representations", "cnn,stft,mfcc", "--arch", "cnn6-tiny", *TINY,
        "--group", "collab", *seeds])
    step("report", ["report", project])
    print(f"project: {project}")


if __name__ == "__main__":
    main()
