"""Commands over stored results: ensemble, sweep (the teacher-count study), report (the paper's tables),
compare (two systems with the significance of their difference) and review (labels the teachers doubt)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import CommandError
from ..project import Project

COMPARE_DESCRIPTION = """\
Compares B with A on the cycles of a split that both have stored logits for:
Sp, Se, Score and the calibration error (ECE) of each; the Score difference B - A
with its 95% interval and p-value from a paired bootstrap over cycles; McNemar's
test on the cycles one gets right and the other wrong; Welch's t-test and an exact
permutation test on the per-seed Scores when both sides have several runs; and
the metrics of both by device, chest location and age group."""

# The names trainer.results.compare.parse_system reads (kept here: `rsc --help` must not load the results).
SYSTEM_SYNTAX = """\
A and B name the two systems:
  RUN_ID            one run (its stored logits)
  group:NAME        the ensemble of the group's finished runs (argmax of the mean logits)
  group:NAME@K      the ensemble of the group's first K finished runs by seed
  group:NAME@mean   the group's runs one by one: Sp, Se and Score are means over its seeds
Differences are B - A. Both systems must have stored logits on the same cycles.

examples:
  rsc compare study.rsc group:teachers group:students
  rsc compare study.rsc group:teachers@5 group:students@mean --json"""


def register(sub) -> None:
    p = sub.add_parser("ensemble", help="score an ensemble: argmax of the mean stored logits of runs")
    p.add_argument("project", type=Path)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--group", help="run group (a group of students gives the second-generation ensemble)")
    which.add_argument("--runs", nargs="+", metavar="RUN", help="explicit run ids instead of a group")
    p.add_argument("--k", type=int, help="use the first k runs by seed (default: all finished runs)")
    p.add_argument("--ks", help="score the ensemble at several k, e.g. 1,3,5,10 (the BTS++ curve)")
    p.add_argument("--split", default="test", help="split to score on (default test)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_ensemble)

    from .train import _add_training_options  # the same training options as `rsc train`

    p = sub.add_parser(
        "sweep",
        help="teacher-count study: students from k = 0, 1, 3, ... teachers, beside the teachers' ensemble",
        description="Plans one student run per (k, seed); k = 0 is hard-label training. Runs that already exist "
        "(same group and seed) are reused, so running the command again continues an interrupted sweep. "
        "--group sets the prefix of the per-k group names (default sweep-TEACHERS-ARCH-MODE).",
    )
    _add_training_options(p)
    p.add_argument("--teachers", required=True, help="group of finished teacher runs")
    p.add_argument("--ks", default="0,1,3,5,10", help="teacher counts (default 0,1,3,5,10)")
    p.add_argument("--mode", default="mean",
                   choices=("mean", "random", "curated", "single", "noise-const", "noise-teacher-var", "raw-logits"),
                   help="soft-label mode (default mean)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default 1)")
    p.add_argument("--hard-weight", type=float, default=0.0, help="weight of the hard-label loss (default 0)")
    p.add_argument("--noise-var", type=float, default=0.1, help="noise variance of mode noise-const (default 0.1)")
    p.add_argument("--table-only", action="store_true", help="print the results table of the planned sweep; train nothing")
    p.add_argument("--json", action="store_true", help="print the results table as JSON")
    p.set_defaults(func=cmd_sweep, seeds="1-5")

    p = sub.add_parser("report", help="the paper's tables from stored results (groups, ensembles, hard vs soft)")
    p.add_argument("project", type=Path)
    p.add_argument("--format", default="md", choices=("md", "csv", "latex", "json"))
    p.add_argument("--output", type=Path, help="write to this file instead of the terminal")
    p.add_argument("--split", default="test", help="split the ensembles are scored on (default test)")
    p.add_argument("--calibration", action="store_true",
                   help="add each group's expected calibration error (its ensemble's, and its runs' mean)")
    p.add_argument("--bins", type=int, default=10, help="confidence bins of the calibration error (default 10)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "compare", help="two systems on the same cycles: scores, bootstrap interval, McNemar, seeds, breakdowns",
        description=COMPARE_DESCRIPTION, epilog=SYSTEM_SYNTAX, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("project", type=Path)
    p.add_argument("a", metavar="A", help="the baseline system (see below)")
    p.add_argument("b", metavar="B", help="the system compared with it")
    p.add_argument("--split", default="test", help="split to compare on (default test)")
    p.add_argument("--bootstrap", type=int, default=10_000, metavar="N", help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and permutation draws (default 0)")
    p.add_argument("--bins", type=int, default=10, help="confidence bins of the calibration error (default 10)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "review", help="label review: cycles whose stored label a teacher ensemble confidently contradicts",
        description="Lists the cycles where the ensemble of the teacher group predicts another class than the "
        "stored label with at least the given probability, most confident first, to listen to and relabel.",
    )
    p.add_argument("project", type=Path)
    p.add_argument("--teachers", required=True, metavar="GROUP", help="group of finished teacher runs")
    p.add_argument("--min-confidence", type=float, default=0.9,
                   help="least probability of the predicted class to list a cycle (default 0.9)")
    p.add_argument("--split", help="review only this split (default: every cycle the teachers have logits for)")
    p.add_argument("--limit", type=int, help="list at most this many cycles")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_review)


def _open(path: Path) -> Project:
    return Project.open(path)


def _fmt(value) -> str:
    return "-" if value is None or value != value else f"{value:.2f}"


def cmd_ensemble(args) -> int:
    from ..results import ensemble_score, jsonable  # strict JSON: an undefined Sp or Se becomes null

    target = args.group if args.group else list(args.runs)
    with _open(args.project) as project:
        if args.ks:
            return _ensemble_curve(args, project, target)
        result = ensemble_score(project, target, k=args.k, split=args.split)
    if args.json:
        print(json.dumps(jsonable(result), indent=2))
        return 0
    m = result["metrics"]
    name = (args.group or "runs") + ("++" if result["k"] > 1 else "")
    print(f"{name} [k={result['k']}] on {args.split} ({result['n_cycles']} cycles): "
          f"Sp {_fmt(m['sp'])}  Se {_fmt(m['se'])}  Score {_fmt(m['score'])}")
    if result["excluded_cycles"]:
        print(f"note: {result['excluded_cycles']} cycles of the split left out (some run has no logits for them)")
    print("runs: " + " ".join(result["run_ids"]))
    return 0


def _ensemble_curve(args, project: Project, target) -> int:
    """`rsc ensemble --ks`: the ensemble's scores at several k (the BTS++ curve)."""
    from ..results import SweepError, ensemble_curve, jsonable, parse_ks

    try:
        ks = parse_ks(args.ks)
    except SweepError as exc:
        raise CommandError(str(exc)) from None
    source = ensemble_curve(project, target, ks, split=args.split)
    points = [{"k": p["k"], "metrics": p["metrics"], "run_ids": p["run_ids"], "n_cycles": p["n_cycles"]} for p in source]
    if args.json:
        print(json.dumps(jsonable({"group": args.group, "split": args.split, "curve": points}), indent=2))
        return 0
    print(f"ensemble of {args.group or 'the given runs'} on {args.split} ({points[0]['n_cycles'] if points else 0} cycles)")
    print(f"{'k':>3}  {'Sp':>6}  {'Se':>6}  {'Score':>6}")
    for p in points:
        m = p["metrics"]
        print(f"{p['k']:>3}  {_fmt(m['sp']):>6}  {_fmt(m['se']):>6}  {_fmt(m['score']):>6}")
    return 0


def _train_settings(args) -> dict:
    """The TrainSpec fields `rsc train` would set from the same options, apart from what the sweep decides."""
    from .train import _spec_from_args

    settings = _spec_from_args(args, seed=1).to_dict()
    for key in ("arch", "seed", "group", "targets"):
        settings.pop(key, None)
    return settings


def cmd_sweep(args) -> int:
    from ..results import format_sweep_table, jsonable, submit_sweep, sweep_table
    from ..train import parse_seeds

    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    with _open(args.project) as project:
        plan = _plan_sweep(project, args, seeds)
        if not args.table_only:
            existing = sum(r.run_id is not None for r in plan.runs)
            ids = submit_sweep(project, plan)
            print(f"sweep {plan.prefix}: {len(ids)} runs (k = {', '.join(map(str, plan.ks))}; seeds "
                  f"{', '.join(map(str, seeds))}), {existing} already there", flush=True)
    if not args.table_only:
        if args.queue:
            print("queued; start a worker with: rsc worker " + str(args.project))
        elif (status := _train_sweep(args, plan, ids)) != 0:
            return status
    with _open(args.project) as project:
        rows = sweep_table(project, plan)
    if args.json:
        print(json.dumps(jsonable({"prefix": plan.prefix, "teachers": plan.teachers_group, "arch": plan.arch,
                          "mode": plan.mode, "rows": rows}), indent=2))
    else:
        print(format_sweep_table(rows, plan))
    return 0


def _plan_sweep(project: Project, args, seeds: list[int]):
    """The sweep's runs, every run's settings checked before anything is stored."""
    from ..results import SweepError, plan_sweep
    from ..train import TrainError

    try:
        plan = plan_sweep(
            project, args.teachers, args.arch, args.ks, seeds, args.mode, prefix=args.group,
            temperature=args.temperature, hard_weight=args.hard_weight, noise_var=args.noise_var,
            **_train_settings(args),
        )
        for spec in plan.specs:
            spec.resolved()
    except (SweepError, TrainError) as exc:
        raise CommandError(str(exc)) from None
    return plan


def _train_sweep(args, plan, ids: list[str]) -> int:
    """Train the sweep's queued runs in this process, in plan order, with the worker loop; 130 if interrupted.

    Runs that another worker has already claimed, or that are done, are left alone; a failed run is
    recorded on the run and the sweep goes on with the next.
    """
    from ..jobs import run_worker
    from .progress import TerminalProgress

    terminal = TerminalProgress(args.quiet)
    where = {r.run_id: (r.k, r.seed) for r in plan.runs}

    def progress(event: dict) -> None:
        if event.get("phase") == "start":
            k, seed = where.get(event["run_id"], ("?", "?"))
            print(f"sweep k={k} seed {seed}: {event['run_id']}", flush=True)
        else:
            terminal(event)

    try:
        run_worker(args.project, once=True, progress=progress, only=ids)
    except KeyboardInterrupt:
        terminal.close()
        print("\nstopped; run the same command again to continue the sweep", file=sys.stderr)
        return 130
    terminal.close()
    return 0


def cmd_report(args) -> int:
    from ..results import build_report, render

    if args.calibration:
        _positive(args.bins, "--bins")
    with _open(args.project) as project:
        report = build_report(project, split=args.split, calibration_bins=args.bins if args.calibration else None)
    text = render(report, args.format)
    if args.output:
        try:
            args.output.write_text(text)
        except OSError as exc:
            raise CommandError(f"{args.output}: cannot write the report ({exc.strerror or exc})") from None
        print(f"wrote {args.output} ({args.format})")
    else:
        sys.stdout.write(text)
    return 0


def _positive(value: int, option: str) -> None:
    if value < 1:
        raise CommandError(f"{option} must be at least 1, got {value}")


def cmd_compare(args) -> int:
    from ..results import compare_systems, format_comparison, jsonable

    _positive(args.bootstrap, "--bootstrap")
    _positive(args.bins, "--bins")
    with _open(args.project) as project:
        result = compare_systems(project, args.a, args.b, split=args.split, n_resamples=args.bootstrap,
                                 seed=args.seed, bins=args.bins)
    if args.json:
        print(json.dumps(jsonable(result), indent=2))
    else:
        print(format_comparison(result))
    return 0


def cmd_review(args) -> int:
    from ..results import format_review, jsonable, label_review

    if not 0.0 <= args.min_confidence <= 1.0:
        raise CommandError(f"--min-confidence is a probability in [0, 1], got {args.min_confidence}")
    with _open(args.project) as project:
        result = label_review(project, args.teachers, min_confidence=args.min_confidence, split=args.split,
                              limit=args.limit)
    if args.json:
        print(json.dumps(jsonable(result), indent=2))
    else:
        print(format_review(result))
    return 0
