"""Time the Compare view on a large study: opening it, and redrawing its charts when the selection changes.

Targets (issue 9): with 100 runs and 7,000 cycles of stored logits, the view opens in <= 1 s, and a
change of selection in the runs table redraws the charts in <= 100 ms.

"Open" is the project handed to the view until its first paint: the runs table with every group's mean
and std over seeds, protocols and runs, the default selection's training curves and settings. The
ensembles need every run's stored logits; they are read on a pool thread after that paint and fill in
group by group ("every ensemble in" is the time until the last one is there). A selection change is the
settings diff, the training curves or the confusion matrix (whichever is on screen) and the repaint.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_compare_view.py [--cycles 7000] [--repeat 5]

The project's recordings and cycles are inserted as ``bench_app_open.py`` does; the runs go through
``trainer.runs`` (insert_run, record_epoch, store_logits and finish), with fake logits on every cycle
whose quality grows with the number of teachers, as in the paper's Figures 2 and 3. No training.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_app_open import build_project  # noqa: E402

from trainer import runs  # noqa: E402
from trainer.evaluate import icbhi_score  # noqa: E402
from trainer.project import Project  # noqa: E402

TEACHER_GROUPS = (("bts-teachers", "bts", 1.5, 10), ("ast-teachers", "ast", 1.3, 10),
                  ("cnn14-teachers", "cnn14", 1.15, 10), ("cnn6-teachers", "cnn6", 1.0, 10))
MISLABELLED = 0.03  # cycles whose stored label is not what their sound says: what label review should find
SWEEP_KS = (0, 1, 3, 5, 10)
STUDENT_MODES = ("random", "curated", "single", "noise", "raw-logits")


def fake_run(project: Project, run_id: str, *, group: str, arch: str, seed: int, quality: float, cycle_ids,
             labels, truth, test, targets: dict, epochs: int = 30, select: str = "val", rng) -> None:
    """One finished run: its spec, an epoch history that climbs to its final score, logits on every cycle."""
    kind = "student" if targets["kind"] == "soft" else "teacher"
    spec = {"arch": arch, "seed": seed, "group": group, "epochs": epochs, "batch_size": 128, "lr": 1e-3,
            "weight_decay": 1e-6, "scheduler": "cosine", "select": select, "targets": targets,
            "spec_augment": arch != "bts", "device": "cuda"}
    runs.insert_run(project, run_id, group=group, kind=kind, arch=arch, seed=seed, spec=spec, status=runs.RUNNING)
    # Every run sees the same hard cycles (a shared offset) and its own noise: averaging runs helps, as it does.
    hardness = np.random.default_rng(0).normal(size=(len(labels), 4)) * 1.1
    logits = (rng.normal(size=(len(labels), 4)) + hardness + quality * np.eye(4)[truth]).astype(np.float32)
    logits[:, 0] += 0.7  # a bias towards normal: Sp above Se, as in ICBHI results
    logits[truth != labels] += 3.0 * np.eye(4, dtype=np.float32)[truth[truth != labels]]
    final = icbhi_score(labels[test], logits[test].argmax(axis=1))
    for epoch in range(1, epochs + 1):
        rise = 1 - np.exp(-epoch / (epochs / 5))
        noise = rng.normal(scale=1.5, size=3)
        entry = {"epoch": epoch, "epochs": epochs, "loss": float(1.4 * (1 - rise) + 0.3 + 0.05 * noise[0]),
                 "sp": float(final["sp"] * rise + noise[1]), "se": float(final["se"] * rise + noise[2]),
                 "val_score": float(final["score"] * rise + noise[0])}
        entry["score"] = (entry["sp"] + entry["se"]) / 2
        runs.record_epoch(project, run_id, epoch, entry)
    metrics = {"sp": final["sp"], "se": final["se"], "score": final["score"], "confusion": final["confusion"].tolist(),
               "n": final["n"], "selection": select, "epoch": epochs, "epochs": epochs}
    with project.transaction():
        runs.store_logits(project, run_id, cycle_ids, logits)
        runs.finish(project, run_id, metrics=metrics, checkpoint=None, epoch=epochs)


def add_study(project: Project, scale: float = 1.0, seed: int = 0) -> int:
    """Teacher groups, a teacher-count sweep of students with its k = 0 baseline, and students of every mode.

    ``scale`` 1 gives 100 runs; smaller scales keep fewer seeds per group (at least two). Returns the count.
    """
    rng = np.random.default_rng(seed)
    cycles = project.cycles()
    cycle_ids = [c["id"] for c in cycles]
    labels = np.array([c["label"] for c in cycles])
    test = np.array([c["split"] == "test" for c in cycles])
    wrong = np.random.default_rng(1).random(len(labels)) < MISLABELLED
    truth = np.where(wrong, (labels + np.random.default_rng(2).integers(1, 4, len(labels))) % 4, labels)
    count = 0

    def seeds(n: int) -> range:
        return range(1, max(2, round(n * scale)) + 1)

    def add(group, arch, quality, n, targets, select="val"):
        nonlocal count
        for s in seeds(n):
            fake_run(project, f"{group}-s{s}", group=group, arch=arch, seed=s, quality=quality + rng.normal(0, 0.05),
                     cycle_ids=cycle_ids, labels=labels, truth=truth, test=test, targets=targets, select=select,
                     rng=rng)
            count += 1

    for group, arch, quality, n in TEACHER_GROUPS:
        add(group, arch, quality, n, {"kind": "hard"}, select="test" if arch == "ast" else "val")
    teachers = "bts-teachers"
    for k in SWEEP_KS:
        targets = {"kind": "hard"} if k == 0 else {
            "kind": "soft", "mode": "mean", "k": k, "teacher_group": teachers, "temperature": 1.0, "hard_weight": 0.0,
            "teachers": [f"{teachers}-s{s}" for s in range(1, k + 1)]}
        add(f"sweep-{teachers}-cnn6-mean-k{k}", "cnn6", 1.0 + 0.35 * (1 - np.exp(-k / 3)), 5, targets)
    for mode in STUDENT_MODES:
        targets = {"kind": "soft", "mode": mode, "k": 1 if mode == "single" else 5, "teacher_group": teachers,
                   "temperature": 1.0, "hard_weight": 0.0}
        add(f"cnn6-{mode}", "cnn6", 1.25 + rng.normal(0, 0.05), 5, targets)
    add("ast-students", "ast", 1.4, 5, {"kind": "soft", "mode": "mean", "k": 5, "teacher_group": teachers,
                                         "temperature": 2.0, "hard_weight": 0.3})
    add("cnn14-students", "cnn14", 1.3, 5, {"kind": "soft", "mode": "mean", "k": 5, "teacher_group": teachers,
                                            "temperature": 1.0, "hard_weight": 0.0})
    return count


def build_study(path: Path, cycles: int, scale: float = 1.0) -> Project:
    project = build_project(path, cycles)
    add_study(project, scale)
    return project


def measure(app, view, project: Project, repeat: int) -> dict[str, list[float]]:
    """Seconds to open the view on the project (repeatedly), to have every ensemble in, and to redraw after
    each selection change, with the training curves and then the confusion matrix on screen."""
    model = view.model
    times: dict[str, list[float]] = {"open": [], "all ensembles in": [], "curves": [], "confusion matrix": [],
                                     "open CPU": [], "curves CPU": [], "confusion matrix CPU": []}
    for _ in range(repeat):
        model.set_project(None)
        app.processEvents()
        started, cpu = time.perf_counter(), time.process_time()
        model.set_project(project)
        view.ensure_current()
        app.processEvents()  # the first paint
        times["open"].append(time.perf_counter() - started)
        times["open CPU"].append(time.process_time() - cpu)
    while view.data.is_loading or view.data.missing():
        app.processEvents()
        time.sleep(0.005)
    times["all ensembles in"].append(time.perf_counter() - started)
    table = view.runs_table
    keys = table.group_rows() + [key for key in table.items if key[0] == "ensemble"]
    for tab, panel in (("curves", view.curves), ("confusion matrix", view.confusion)):
        view.tabs.setCurrentWidget(panel)
        app.processEvents()
        for step in range(repeat * 8):
            first = keys[(7 * step) % len(keys)]
            chosen = [first] if step % 3 else [first, keys[(7 * step + 3) % len(keys)]]
            started, cpu = time.perf_counter(), time.process_time()
            table.select_rows(chosen)
            app.processEvents()  # the repaint
            times[tab].append(time.perf_counter() - started)
            times[f"{tab} CPU"].append(time.process_time() - cpu)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=7000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--project", type=Path, help="build the study here once and reuse it on later runs")
    args = parser.parse_args(argv)

    from PySide6.QtWidgets import QApplication

    import rscapp  # noqa: F401  (applies the PySide refcount guard)
    from rscapp.compare import CompareView
    from rscapp.model import ProjectModel
    from rscapp.style import apply_style
    from rscapp.workers import cancel_all

    app = QApplication.instance() or QApplication([])
    apply_style(app)
    with tempfile.TemporaryDirectory(prefix="rsc-bench-") as tmp:
        path = args.project or Path(tmp) / "study.rsc"
        started = time.perf_counter()
        if path.exists():
            project = Project.open(path)
            args.cycles = len(project.cycles())
        else:
            project = build_study(path, args.cycles)
        n_runs = len(runs.list_runs(project))
        print(f"{path.name}: {args.cycles} cycles, {n_runs} runs with logits on every cycle "
              f"({time.perf_counter() - started:.1f} s to build or open)")
        model = ProjectModel()
        view = CompareView(model)
        view.resize(1500, 950)
        view.show()
        app.processEvents()
        times = measure(app, view, project, args.repeat)
        model.set_project(None)
        cancel_all(wait=60.0)  # cancelled reads finish their group before the folder goes
        view.close()
        project.close()

    def fmt(values):
        ms = [v * 1000 for v in values]
        return f"median {statistics.median(ms):7.1f} ms   max {max(ms):7.1f} ms   (n={len(ms)})"

    size = f"{n_runs} runs x {args.cycles} cycles"
    print(f"open the Compare view, {size} (target <= 1000 ms):      {fmt(times['open'])}")
    print(f"  then every ensemble in (outputs read on a pool thread):     {fmt(times['all ensembles in'])}")
    print(f"selection change redraws, training curves (target <= 100 ms): {fmt(times['curves'])}")
    print(f"selection change redraws, confusion matrix (target <= 100 ms): {fmt(times['confusion matrix'])}")
    print("  the same in this process's CPU time (what a loaded machine does not inflate):")
    print(f"    open:                                                       {fmt(times['open CPU'])}")
    print(f"    training curves:                                            {fmt(times['curves CPU'])}")
    print(f"    confusion matrix:                                           {fmt(times['confusion matrix CPU'])}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
