"""Time from "open this recording" to a painted spectrogram in the Listen view.

Target (issue 3/5): a 20 s, 44.1 kHz recording from click to a drawn spectrogram in at most 150 ms.

The clock starts just before ``ListenView.open_recording`` (what a double-click in the Library calls)
and stops when the spectrogram image has been painted (``spectrogramDrawn``, emitted from the image
item's paint). Cold runs empty every cache first, so each one reads the file and computes the STFT;
warm runs switch away and back (the spectrogram comes from the cache). Also printed: how long
``open_recording`` holds the GUI thread, and the pieces measured alone (read, STFT).

    .venv/bin/python benchmarks/bench_spectrogram.py [--runs 9] [--seconds 20] [--rate 44100]

Runs offscreen unless a display is given with QT_QPA_PLATFORM. The machine's load average is printed
with the figures: on a shared machine they are upper bounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def write_recording(path: Path, seconds: float, rate: int) -> None:
    """Breath-like noise bursts with a wheeze tone and crackle clicks (what the view is for)."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    breath = 0.5 * (1 - np.cos(2 * np.pi * t / 4.0))
    wave = 0.2 * rng.standard_normal(t.size) * breath
    wave += 0.15 * np.sin(2 * np.pi * 400 * t) * (np.sin(2 * np.pi * t / 8.0) > 0.6)
    for click in rng.uniform(0, seconds, 40):
        i = int(click * rate)
        wave[i : i + 40] += 0.6 * np.hanning(40)
    sf.write(path, (wave / np.abs(wave).max() * 0.9).astype("float32"), rate, subtype="PCM_16")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=44100)
    parser.add_argument("--preset", default="Lung sounds", help="a built-in spectrogram preset")
    args = parser.parse_args(argv)
    # The user's saved spectrogram settings must neither change the figures nor be changed by them.
    settings_home = tempfile.mkdtemp(prefix="rsc-bench-settings-")
    os.environ["XDG_CONFIG_HOME"] = settings_home

    import rscapp  # noqa: F401 - installs the PySide6 6.12 refcount guard before any Qt call
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from rscapp.listen import ListenView
    from rscapp.model import ProjectModel
    from rscapp.listen.spectrogram import BUILTIN_PRESETS, CACHE, compute_spectrogram
    from trainer.audio import read_audio
    from trainer.data.folder import import_folder
    from trainer.project import Project

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="rsc-bench-") as tmp:
        tmp = Path(tmp)
        audio = tmp / "audio"
        audio.mkdir()
        write_recording(audio / "bench_20s.wav", args.seconds, args.rate)
        write_recording(audio / "other.wav", 5.0, args.rate)
        project = Project.create(tmp / "bench.rsc")
        import_folder(project, audio)
        target = project.recording_by_name("bench_20s")["id"]
        other = project.recording_by_name("other")["id"]

        model = ProjectModel()
        view = ListenView(model)
        view.apply_spectrogram_settings(BUILTIN_PRESETS[args.preset])
        view.resize(1400, 860)
        view.show()
        model.set_project(project)

        def until_drawn(action, timeout_ms=10000) -> tuple[float, float]:
            loop = QEventLoop()
            done: list[float] = []

            def drawn(_rid):
                done.append(time.perf_counter())
                loop.quit()

            view.spectrogramDrawn.connect(drawn)
            timer = QTimer()
            timer.setSingleShot(True)
            timer.timeout.connect(loop.quit)
            timer.start(timeout_ms)
            start = time.perf_counter()
            action()
            returned = time.perf_counter()
            if not done:
                loop.exec()
            timer.stop()
            view.spectrogramDrawn.disconnect(drawn)
            if not done:
                raise SystemExit(f"no spectrogram drawn within {timeout_ms} ms")
            return (done[0] - start) * 1000, (returned - start) * 1000

        until_drawn(lambda: view.open_recording(target))  # warm-up: imports, first paint, pool thread start
        cold, blocked, warm = [], [], []
        for _ in range(args.runs):
            until_drawn(lambda: view.open_recording(other))
            CACHE.clear()
            view._audio_cache.clear()
            total, held = until_drawn(lambda: view.open_recording(target))
            cold.append(total)
            blocked.append(held)
        for _ in range(args.runs):
            until_drawn(lambda: view.open_recording(other))
            warm.append(until_drawn(lambda: view.open_recording(target))[0])

        path = project.audio_path(project.recording(target))
        reads, stfts = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            wave, rate = read_audio(path)
            t1 = time.perf_counter()
            compute_spectrogram(wave, rate, view.spec_settings)
            t2 = time.perf_counter()
            reads.append((t1 - t0) * 1000)
            stfts.append((t2 - t1) * 1000)
        shape = view.spectrogram.db.shape
        view.close()
        model.set_project(None)
        project.close()
    import shutil

    shutil.rmtree(settings_home, ignore_errors=True)

    def fmt(values):
        return f"median {statistics.median(values):6.1f} ms  (min {min(values):6.1f}, max {max(values):6.1f})"

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Listen: {args.seconds:g} s at {args.rate} Hz, {args.runs} runs, preset '{args.preset}': window {view.spec_settings.window}, "
          f"max {view.spec_settings.max_freq:g} Hz, image {shape[0]}x{shape[1]}, platform {app.platformName()}, "
          f"{os.cpu_count()} CPUs, load average {load:.2f}")
    print(f"  open -> spectrogram painted, cold (read + STFT + draw): {fmt(cold)}   target <= 150 ms")
    print(f"  open -> spectrogram painted, warm (cached):              {fmt(warm)}")
    print(f"  GUI thread held by open_recording:                        {fmt(blocked)}")
    print(f"  alone: read {statistics.median(reads):.1f} ms, STFT {statistics.median(stfts):.1f} ms (medians)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
