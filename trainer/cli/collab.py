"""`rsc collab` and `rsc distill --mode collab`: collaborative distillation across input representations
(one lockstep job per seed, one run per representation)."""

from __future__ import annotations

import sys

from . import CommandError
from .features import SET_NAMES
from .progress import TerminalProgress, format_metrics
from .train import _add_training_options, _choices, _open

DEFAULT_REPRESENTATIONS = "cnn,stft,mfcc"


def add_collab_options(p, temperature: bool = True) -> None:
    """The options of a collaborative job (`rsc distill` has its own --temperature)."""
    p.add_argument("--representations", default=DEFAULT_REPRESENTATIONS,
                   help=f"collab: comma-separated feature sets, at least two (of {', '.join(SET_NAMES)}; default "
                        f"{DEFAULT_REPRESENTATIONS})")
    p.add_argument("--peer-weight", type=float, default=1.0, help="collab: weight w of the KL-to-peers term (default 1)")
    if temperature:
        p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature T of that term (default 1)")


def register(sub) -> None:
    p = sub.add_parser(
        "collab",
        help="train one model per input representation together, each distilling from the others",
        description=(
            "Multi-representation collaborative distillation (the same job as `rsc distill --mode collab`): one "
            "model of --arch per feature set (e.g. log-mel cnn, linear stft, mfcc) trains in lockstep on the same "
            "batches; each learns from the labels and from the mean of the others' predictions. Each model is "
            "stored as its own run, in group GROUP-<set>, and is used alone afterwards like any run. A stopped "
            "job does not resume: it is trained again whole."
        ),
    )
    _add_training_options(p)
    add_collab_options(p)
    p.set_defaults(func=cmd_collab)


def representations(text: str) -> list[str]:
    return [part.strip() for part in str(text).split(",") if part.strip()]


def cmd_collab(args) -> int:
    from ..jobs import submit_collab
    from ..jobs.specs import CollabChoices, collab_jobs
    from ..project import ProjectError
    from ..train import RunStopped, TrainError
    from ..train.collab import create_collab_runs, train_collab

    temperature = 1.0 if args.temperature is None else args.temperature
    collab = CollabChoices(representations(args.representations), args.peer_weight, temperature)
    choices = _choices(args)
    choices.seed_list()  # bad seeds are reported before the project is opened
    with _open(args.project) as project:
        jobs = collab_jobs(project, choices, collab)
        if args.queue:
            for run_id in submit_collab(project, jobs):
                print(f"queued {run_id}")
            print(f"a worker trains each job's {len(jobs.jobs[0])} models together: rsc worker {args.project}")
            return 0
        for specs in jobs.jobs:
            seed = specs[0].seed
            try:
                run_ids = create_collab_runs(project, specs, collab.peer_weight, collab.temperature, jobs.group)
            except TrainError as exc:
                raise CommandError(str(exc)) from None
            print(f"collaborative job seed {seed}: " + ", ".join(run_ids), flush=True)
            progress = TerminalProgress(args.quiet)
            try:
                metrics = train_collab(project, run_ids, progress=progress)
            except KeyboardInterrupt:
                print("\nstopped; a collaborative job cannot resume: train it again", file=sys.stderr)
                return 130
            except RunStopped as exc:
                print(str(exc), file=sys.stderr)
                return 1
            except (TrainError, ProjectError) as exc:
                raise CommandError(f"collaborative job seed {seed} failed: {exc}") from None
            finally:
                progress.close()
            for run_id in run_ids:
                print(f"done {run_id}: {format_metrics(metrics[run_id])}", flush=True)
    return 0
