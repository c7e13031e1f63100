"""Segmentation against annotated cycles: precision, recall, F1 at 0.25 and 0.5 s, boundary error, speed.

On the synthetic set (written and imported into a temporary project) and on the real ICBHI
recordings in ../shared/data/icbhi (imported into a temporary project; nothing is written there),
for the automatic method and, as a baseline, for fixed windows; then the time to segment one
20 s recording already in memory (and with reading the file).

Usage: .venv/bin/python benchmarks/bench_segment.py [ICBHI_DIR] [--recordings N]   (default 40 synthetic)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from trainer.audio import read_audio
from trainer.data.icbhi import import_icbhi
from trainer.data.synth import write_synthetic_dataset
from trainer.infer import (
    METHODS, evaluate_project, evaluate_segments, format_evaluation, reference_spans, segment_file, segment_wave,
)
from trainer.project import Project

REPO = Path(__file__).resolve().parents[1]


def report(title: str, project: Project, recordings: list[dict]) -> None:
    print(f"\n== {title}: {len(recordings)} recordings, "
          f"{sum(len(reference_spans(project, r['id'])) for r in recordings)} annotated cycles")
    for method in METHODS:
        print(f"-- method {method}")
        print(format_evaluation(evaluate_project(project, recordings, method)))


def per_recording(project: Project, recordings: list[dict]) -> None:
    print("-- per recording (auto, 0.5 s): hits / found / annotated")
    for rec in recordings:
        found = segment_file(project.audio_path(rec))
        m = evaluate_segments(found, reference_spans(project, rec["id"]), 0.5)
        methods = "+".join(sorted({s.method for s in found}))
        print(f"   {rec['name']:<28} {m.hits:>3} / {m.found:>3} / {m.reference:>3}  ({methods})")


def timing(paths: list[Path], repeats: int = 20) -> None:
    print("\n== speed: one 20 s recording")
    for path in paths:
        wave, rate = read_audio(path)
        segment_wave(wave, rate)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            segment_wave(wave, rate)
            times.append(time.perf_counter() - started)
        started = time.perf_counter()
        segment_file(path)
        with_read = time.perf_counter() - started
        print(f"   {path.name:<32} {rate:>6} Hz  {wave.size / rate:5.1f} s  segment: median {1000 * statistics.median(times):5.1f} ms,"
              f" best {1000 * min(times):5.1f} ms;  with reading the file {1000 * with_read:5.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("icbhi", nargs="?", type=Path, default=REPO.parent / "shared" / "data" / "icbhi")
    parser.add_argument("--recordings", type=int, default=40, help="synthetic recordings (default 40)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synth = write_synthetic_dataset(tmp / "synth", recordings=args.recordings, seed=0)
        with Project.create(tmp / "synth.rsc") as project:
            import_icbhi(project, synth)
            recordings = project.recordings()
            report("synthetic (seed 0)", project, recordings)
            synth_paths = [project.audio_path(r) for r in recordings[:3]]
            timing(synth_paths, repeats=10)
        if not (args.icbhi / "ICBHI_final_database").is_dir():
            sys.exit(f"\nno ICBHI files at {args.icbhi}: real figures skipped")
        with Project.create(tmp / "icbhi.rsc") as project:
            import_icbhi(project, args.icbhi)
            recordings = [r for r in project.recordings() if r["audio_status"] == "ok"]
            report(f"real ICBHI ({args.icbhi})", project, recordings)
            per_recording(project, recordings)
            timing([project.audio_path(r) for r in recordings if abs(r["duration"] - 20.0) < 0.5])


if __name__ == "__main__":
    main()
