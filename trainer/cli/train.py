"""Training commands: train, distill, resume, runs, cancel, worker."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path

from ..project import Project
from . import CommandError
from .progress import TerminalProgress, format_metrics


# trainer.distill.MODES without "hard", written out so that building the parser imports no torch (the
# classify-only edition builds it); a test keeps the two equal.
DISTILL_MODES = ("mean", "random", "curated", "single", "noise-const", "noise-teacher-var", "raw-logits", "ced")
# Collaborative distillation has no teacher group: the models of one job teach each other (trainer.train.collab).
COLLAB_MODE = "collab"


def _add_training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("project", type=Path, help="project file")
    p.add_argument("--arch", required=True, help="model name (see `rsc models`), e.g. cnn6, ast, bts, cnn6-tiny")
    p.add_argument("--seeds", default="1", help="seeds, e.g. 1-5 or 1,3,5 (default 1)")
    p.add_argument("--group", help="group name the runs are stored under (default: the architecture)")
    p.add_argument("--epochs", type=int, help="default: 200 for CNNs, 50 for transformers, 10 for -tiny models")
    p.add_argument("--batch-size", type=int, help="default: 128 for CNNs, 8 for transformers and -tiny models")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: 1e-3 CNNs, 5e-5 transformers, 2e-3 -tiny models)")
    p.add_argument("--weight-decay", type=float, help="default 1e-6")
    p.add_argument("--scheduler", choices=("cosine", "constant"), help="per-epoch cosine to lr*1e-3 (default) or constant")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda when available)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="fp16 autocast on CUDA (default: on for transformers)")
    p.add_argument("--pretrained", help="a local checkpoint path, or 'hub' to download the published weights")
    p.add_argument("--select", choices=("last", "val", "test"),
                   help="checkpoint: last epoch (the default, but val in the cpu recipe), best on a patient-disjoint "
                        "validation split from train, or best on test (the reference protocol; optimistic, marked in "
                        "every report)")
    p.add_argument("--recipe", choices=("family", "tiny", "cpu"),
                   help="which defaults fill what is not given: the model family's (the published recipe), tiny "
                        "(-tiny models: 10 short epochs), cpu (low-complexity students: 60 epochs, SpecAugment, "
                        "class-balanced batches, select val). Default: tiny for -tiny models, cpu for cpmobile")
    p.add_argument("--balance", choices=("none", "loss", "sampler"),
                   help="class balance: none, the loss weighted by inverse class frequency, or batches drawn so "
                        "classes come evenly (default: the recipe's)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of training cycles held out for --select val")
    p.add_argument("--spec-augment", action=argparse.BooleanOptionalAction, default=None,
                   help="SpecAugment (default: on, except for CLAP/BTS and -tiny models)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="change a model setting, e.g. channels=32,64,128,256 or dropout=0.2 (repeatable)")
    p.add_argument("--queue", action="store_true", help="only store the runs as jobs for `rsc worker`")
    p.add_argument("--quiet", action="store_true", help="no progress bars (epoch lines are still printed)")


def register(sub) -> None:
    p = sub.add_parser("train", help="train models with hard labels (one run per seed)")
    _add_training_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("distill", help="train students on soft labels from a group of teacher runs")
    _add_training_options(p)
    p.add_argument("--teachers", help="group of finished teacher runs (every mode but collab)")
    p.add_argument("--mode", default="mean", choices=(*DISTILL_MODES, COLLAB_MODE),
                   help="soft-label targets (REFERENCE.md section 5; default mean); ced: the teachers' views, "
                        "replayed (seed paper 003; made by the first student, or beforehand by `rsc logits`); "
                        "collab: one model per --representations, trained together, each from its peers (seed "
                        "paper 002; no teachers)")
    p.add_argument("--k", type=int, help="number of teachers (default: all finished runs of the group)")
    p.add_argument("--temperature", type=float, help="softmax temperature (default 1, or the preset's)")
    p.add_argument("--hard-weight", type=float, help="weight of the hard-label loss (default 0, or the preset's)")
    p.add_argument("--preset", choices=("efficientat", "cp-jku"),
                   help="a published loss weighting: efficientat (0.1 x labels + 0.9 x teachers, T 1) or cp-jku "
                        "(0.02 x CE + 0.98 x T^2 x KL, T 2)")
    p.add_argument("--feature-weight", type=float,
                   help="also learn one teacher's intermediate feature maps through a 1x1-conv projector, with this "
                        "weight on their MSE (seed paper 004); off when not given")
    p.add_argument("--feature-teacher", help="the run whose maps are learned (default: the first teacher)")
    p.add_argument("--teacher-layer", default="auto", help="the teacher's layer (default auto: its last map)")
    p.add_argument("--student-layer", default="auto", help="the student's layer (default auto: its last map)")
    p.add_argument("--noise-var", type=float, default=0.1, help="noise variance of mode noise-const (default 0.1)")
    p.add_argument("--passes", type=int, default=4, help="--mode ced: the stored views per cycle to learn from (default 4)")
    p.add_argument("--view-seed", type=int, default=0, help="--mode ced: the seed the views were made with (default 0)")
    from .collab import add_collab_options

    add_collab_options(p, temperature=False)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser(
        "logits", help="run a teacher group over augmented views of every training cycle (for --mode ced)",
        description="Consistent ensemble distillation (seed paper 003): the group's finished teachers see N "
        "augmented views of each training cycle; the mean logits on each view are stored (top k, fp16) with "
        "the seed that made the view, so a student trained with --mode ced sees exactly the same inputs.",
    )
    p.add_argument("project", type=Path, help="project file")
    p.add_argument("--teachers", required=True, help="group of finished teacher runs")
    p.add_argument("--passes", type=int, default=4, help="augmented views per cycle (default 4)")
    p.add_argument("--top-k", type=int, help="logits kept per view (default: all classes)")
    p.add_argument("--view-seed", type=int, default=0, help="seed of the views (default 0)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_logits)

    p = sub.add_parser("resume", help="continue a cancelled, failed or killed run from its last checkpoint")
    p.add_argument("project", type=Path)
    p.add_argument("run", nargs="+", help="run id(s)")
    p.add_argument("--queue", action="store_true", help="put the run back in the queue for `rsc worker`")
    p.add_argument("--restart", action="store_true",
                   help="train the run again from its first epoch (when none of its checkpoints can be trusted; "
                        "the result is the same)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("runs", help="list runs with their status and scores")
    p.add_argument("project", type=Path)
    p.add_argument("--group", help="only this group")
    p.add_argument("--status", help="only runs with this status")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("cancel", help="stop a queued or running run (its last checkpoint is kept)")
    p.add_argument("project", type=Path)
    p.add_argument("run", nargs="+")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("worker", help="train queued runs of a project in this process")
    p.add_argument("project", type=Path)
    p.add_argument("--once", action="store_true", help="exit when the queue is empty (default: keep waiting)")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between looks at an empty queue")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_worker)


def _summary(results: list[dict]) -> None:
    if len(results) < 2:
        return
    from ..evaluate import mean_std

    parts = []
    for key, name in (("sp", "Sp"), ("se", "Se"), ("score", "Score")):
        mean, std = mean_std([m[key] for m in results])
        parts.append(f"{name} {mean:.2f} +- {std:.2f}")
    print(f"{len(results)} seeds: " + "  ".join(parts))


# -- commands ------------------------------------------------------------------------------------
def cmd_logits(args) -> int:
    import json

    from ..distill import DistillError
    from ..train import TrainError
    from ..train.logit_passes import run_passes
    from .data import progress_bar

    update, close = progress_bar("views", args.quiet)
    try:
        with _open(args.project) as project:
            _, figures = run_passes(project, args.teachers, passes=args.passes, k=args.top_k,
                                    base_seed=args.view_seed, progress=update)
    except (TrainError, DistillError) as exc:
        raise CommandError(str(exc)) from None
    finally:
        close()
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{figures['views']} views of {figures['cycles']} cycles in {figures['seconds']:.1f} s "
          f"({figures['views_per_s']} views/s) -> {figures['path']}")
    print(f"stored per cycle and view: {figures['bytes_per_view']} bytes (seed, digest, top-k logits in fp16); "
          f"the cached features of one cycle: {figures['feature_bytes_per_cycle']:,} bytes")
    print(f"train a student on them with: rsc distill {args.project} --mode ced --teachers {args.teachers} "
          f"--passes {args.passes} ...")
    return 0


def _choices(args):
    """The training options as the choices trainer.jobs.specs turns into jobs (the app's dialogs make the same)."""
    from ..jobs.specs import TrainChoices

    return TrainChoices(
        arch=args.arch, seeds=args.seeds, group=args.group, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, weight_decay=args.weight_decay, scheduler=args.scheduler, device=args.device, amp=args.amp,
        pretrained=args.pretrained, select=args.select, val_fraction=args.val_fraction,
        spec_augment=args.spec_augment, model_args=list(args.model_arg), balance=args.balance, recipe=args.recipe,
    )


def _spec_from_args(args, seed: int, targets: dict | None = None):  # `rsc sweep` takes its settings from here
    return _choices(args).spec(seed, targets)


def _open(path: Path) -> Project:
    return Project.open(path)


def _run_specs(args, specs) -> int:
    from .. import runs
    from ..jobs import submit
    from ..jobs.specs import check_specs
    from ..train import RunStopped, TrainError, create_run, run_training

    with _open(args.project) as project:
        check_specs(specs)  # every seed's settings are checked before the first run starts
        if args.queue:
            for spec in specs:
                run_id = submit(project, spec)
                print(f"queued {run_id}")
            print("start a worker with: rsc worker " + str(args.project))
            return 0
        progress = TerminalProgress(args.quiet)
        results = []
        for spec in specs:
            run_id = create_run(project, spec, status=runs.RUNNING)
            resolved = spec.resolved()
            print(
                f"run {run_id}: {resolved.arch} seed {resolved.seed}, {resolved.kind}, {resolved.epochs} epochs, "
                f"batch {resolved.batch_size}, lr {resolved.lr:g}, {resolved.device}"
                + (" amp" if resolved.amp and resolved.device.startswith("cuda") else ""),
                flush=True,
            )
            try:
                metrics = run_training(project, run_id, progress=progress)
            except KeyboardInterrupt:
                progress.close()
                print(f"\nstopped {run_id}; continue it with: rsc resume {args.project} {run_id}", file=sys.stderr)
                return 130
            except RunStopped as exc:
                progress.close()
                print(str(exc), file=sys.stderr)
                return 1
            except TrainError as exc:
                progress.close()
                raise CommandError(f"run {run_id} failed: {exc}") from None
            progress.close()
            print(f"done {run_id}: {format_metrics(metrics)}", flush=True)
            results.append(metrics)
        _summary(results)
    return 0


def cmd_train(args) -> int:
    from ..jobs.specs import teacher_specs

    return _run_specs(args, teacher_specs(_choices(args)))


def cmd_distill(args) -> int:
    from ..jobs.specs import DistillChoices, student_jobs

    if args.mode == COLLAB_MODE:
        from .collab import cmd_collab

        if args.teachers:
            raise CommandError("--mode collab has no teacher group: the models of the job teach each other")
        return cmd_collab(args)
    if not args.teachers:
        raise CommandError(f"--mode {args.mode} needs --teachers GROUP (a group of finished runs)")
    choices = _choices(args)
    choices.seed_list()  # bad seeds are reported before the project is opened
    distill = DistillChoices(teachers=args.teachers, mode=args.mode, k=args.k, temperature=args.temperature,
                             hard_weight=args.hard_weight, noise_var=args.noise_var, passes=args.passes,
                             view_seed=args.view_seed, preset=args.preset, feature=_feature_choices(args))
    with _open(args.project) as project:
        jobs = student_jobs(project, choices, distill)
    if jobs.teachers:
        print(f"teachers ({len(jobs.teachers)}, {jobs.selection}): {', '.join(jobs.teachers)}")
    return _run_specs(args, jobs.specs)


def _feature_choices(args) -> dict | None:
    if args.feature_weight is None:
        if args.feature_teacher or args.teacher_layer != "auto" or args.student_layer != "auto":
            raise CommandError("--feature-teacher, --teacher-layer and --student-layer need --feature-weight")
        return None
    feature = {"weight": args.feature_weight, "teacher_layer": args.teacher_layer, "student_layer": args.student_layer}
    return feature | ({"teacher": args.feature_teacher} if args.feature_teacher else {})


def cmd_resume(args) -> int:
    from .. import runs
    from ..train import RunStopped, resume

    if args.restart and args.queue:
        raise CommandError("--restart trains the run here; it cannot be combined with --queue")
    with _open(args.project) as project:
        for run_id in args.run:
            if args.queue:
                runs.requeue(project, run_id)
                print(f"queued {run_id}")
                continue
            progress = TerminalProgress(args.quiet)
            try:
                try:
                    metrics = resume(project, run_id, progress=progress, restart=args.restart)
                finally:
                    progress.close()
            except KeyboardInterrupt:
                print(f"\nstopped {run_id}; continue it with: rsc resume {args.project} {run_id}", file=sys.stderr)
                return 130
            except RunStopped as exc:
                print(str(exc), file=sys.stderr)
                return 1
            print(f"done {run_id}: {format_metrics(metrics)}", flush=True)
    return 0


def _fmt(value, spec: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def cmd_runs(args) -> int:
    from .. import runs

    with _open(args.project) as project:
        rows = runs.list_runs(project, group=args.group or None, status=args.status or None)
    if not rows:
        print("no runs")
        return 0
    # A run whose process is gone is shown with "?": resume it.
    orphaned = {run.id for run in rows if run.active and not run.owner_alive()}
    wid = max(len("run"), *(len(run.id) for run in rows))
    wgroup = max(len("group"), *(len(str(run.group)) for run in rows))
    print(f"{'run':<{wid}} {'group':<{wgroup}} {'kind':<8} {'status':<10} {'epoch':>9} {'Sp':>6} {'Se':>6} {'Score':>6}  sel")
    for run in rows:
        m = run.metrics
        status = run.status + ("?" if run.id in orphaned else "")
        print(
            f"{run.id:<{wid}} {str(run.group):<{wgroup}} {str(run.kind):<8} {status:<10} "
            f"{str(run.epoch) + '/' + str(run.spec.get('epochs')):>9} {_fmt(m.get('sp')):>6} {_fmt(m.get('se')):>6} "
            f"{_fmt(m.get('score')):>6}  {m.get('selection', '')}"
        )
    if orphaned:
        print("?: the process training it is gone; continue with `rsc resume PROJECT RUN`")
    return 0


def cmd_cancel(args) -> int:
    from .. import runs

    with _open(args.project) as project:
        for run_id in args.run:
            print(f"{run_id}: {runs.cancel(project, run_id)}")
    return 0


def cmd_worker(args) -> int:
    from ..jobs import run_worker

    stop = {"flag": False}

    def on_term(signum, frame):
        stop["flag"] = True  # the current run stops after its batch, keeping its checkpoint

    previous = signal.signal(signal.SIGTERM, on_term)
    terminal = TerminalProgress(args.quiet)

    def progress(event: dict) -> None:
        terminal(event)
        if event.get("phase") == "done":
            print(f"done {event['run_id']}: {format_metrics(event['metrics'])}", flush=True)

    try:
        handled = run_worker(args.project, once=args.once, poll_seconds=args.poll, progress=progress,
                             should_exit=lambda: stop["flag"])
    finally:
        terminal.close()
        signal.signal(signal.SIGTERM, previous)
    print(f"worker: {len(handled)} run(s) handled")
    return 0
