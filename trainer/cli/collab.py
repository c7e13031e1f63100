"""`rsc collab`: collaborative distillation across input representations (one job, one run per representation)."""

from __future__ import annotations

import sys

from . import CommandError
from .features import SET_NAMES
from .progress import TerminalProgress, format_metrics
from .train import _add_training_options, _choices, _open


def register(sub) -> None:
    p = sub.add_parser(
        "collab",
        help="train one model per input representation together, each distilling from the others",
        description=(
            "Multi-representation collaborative distillation: one model of --arch per feature set (e.g. log-mel "
            "cnn, linear stft, mfcc) trains in lockstep on the same batches; each learns from the labels and from "
            "the mean of the others' predictions. Each model is stored as its own run, in group GROUP-<set>, "
            "and is used alone afterwards like any run. The job is not resumable: a stopped one is trained again."
        ),
    )
    _add_training_options(p)
    p.add_argument("--representations", default="cnn,stft,mfcc",
                   help=f"comma-separated feature sets, at least two (of {', '.join(SET_NAMES)}; default cnn,stft,mfcc)")
    p.add_argument("--peer-weight", type=float, default=1.0, help="weight w of the KL-to-peers term (default 1)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature T of that term (default 1)")
    p.set_defaults(func=cmd_collab)


def representations(text: str) -> list[str]:
    names = [part.strip() for part in str(text).split(",") if part.strip()]
    unknown = [n for n in names if n not in SET_NAMES]
    if unknown:
        raise CommandError(f"unknown representation {unknown[0]!r} (expected feature sets of {', '.join(SET_NAMES)})")
    if len(names) < 2 or len(set(names)) != len(names):
        raise CommandError(f"--representations needs at least two different feature sets, got {text!r}")
    return names


def cmd_collab(args) -> int:
    import dataclasses

    from ..train import RunStopped, TrainError
    from ..train.collab import create_collab_runs, train_collab

    if args.queue:
        raise CommandError("a collaborative job trains its models together here; it cannot be --queue'd for workers")
    names = representations(args.representations)
    choices = _choices(args)
    try:
        seeds = choices.seed_list()
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    group = args.group or f"collab-{args.arch}"
    with _open(args.project) as project:
        for seed in seeds:
            base = choices.spec(seed)
            specs = [dataclasses.replace(base, feature_set=name, model_args={**base.model_args, "feature_set": name})
                     for name in names]
            try:
                run_ids = create_collab_runs(project, specs, args.peer_weight, args.temperature, group)
            except TrainError as exc:
                raise CommandError(str(exc)) from None
            print(f"collaborative job seed {seed}: " + ", ".join(run_ids), flush=True)
            progress = TerminalProgress(args.quiet)
            try:
                metrics = train_collab(project, run_ids, progress=progress)
            except KeyboardInterrupt:
                print("\nstopped; a collaborative job cannot resume: train it again with a new --group", file=sys.stderr)
                return 130
            except RunStopped as exc:
                print(str(exc), file=sys.stderr)
                return 1
            except TrainError as exc:
                raise CommandError(f"collaborative job seed {seed} failed: {exc}") from None
            finally:
                progress.close()
            for run_id in run_ids:
                print(f"done {run_id}: {format_metrics(metrics[run_id])}", flush=True)
    return 0
