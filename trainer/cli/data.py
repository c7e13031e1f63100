"""Commands for the project file and data: new, import icbhi|folder, stats, synth, check."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..project import Project
from ..vocab import LABELS
from . import CommandError


def register(sub) -> None:
    p = sub.add_parser("new", help="create an empty project file")
    p.add_argument("project", type=Path)
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("import", help="import recordings and their labels")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    q = kinds.add_parser("icbhi", help="the ICBHI 2017 database in its official layout")
    q.add_argument("project", type=Path, help="project file (created if it does not exist)")
    q.add_argument("directory", type=Path, help="ICBHI_final_database or the folder that holds it")
    q.add_argument("--split", type=Path, help="split file (default: ICBHI_challenge_train_test.txt beside the data)")
    q.add_argument("--demographics", type=Path, help="demographic_info.txt")
    q.add_argument("--diagnosis", type=Path, help="patient_diagnosis.csv")
    q.add_argument("--folds", type=Path, help="patient_list_foldwise.txt")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=cmd_import_icbhi)
    q = kinds.add_parser("folder", help="any wav/flac recordings under a folder")
    q.add_argument("project", type=Path, help="project file (created if it does not exist)")
    q.add_argument("directory", type=Path)
    q.add_argument("--labels", type=Path, help="CSV with file,start,end and label or crackle,wheeze (optional split,patient)")
    q.add_argument("--seed", type=int, default=0, help="seed of the patient-level split when the CSV has no split column")
    q.add_argument("--test-fraction", type=float, default=0.4, help="share of patients in the test split (default 0.4)")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=cmd_import_folder)

    p = sub.add_parser("stats", help="recordings and cycles per split and class")
    p.add_argument("project", type=Path)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("synth", help="write a synthetic ICBHI-layout dataset")
    p.add_argument("directory", type=Path)
    p.add_argument("--recordings", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=float, default=20.0, help="seconds per recording (5 to 600)")
    p.add_argument("--force", action="store_true",
                   help="replace a dataset already in the folder (its listed recordings and its split file)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("labels", help="export or import cycle labels (ICBHI txt, CSV, Audacity, Praat TextGrid)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = actions.add_parser("export", help="write one recording's cycles (any format) or all recordings' (CSV)")
    q.add_argument("project", type=Path)
    q.add_argument("output", type=Path, help="file to write; the suffix picks the format unless --format is given")
    q.add_argument("--recording", help="recording name (default: every recording, CSV only)")
    q.add_argument("--format", choices=("icbhi", "csv", "audacity", "textgrid"))
    q.set_defaults(func=cmd_labels_export)
    q = actions.add_parser(
        "import", help="read a label file into the project (all of it, or nothing on an error)",
        description=(
            "Read a label file into the project: all of it, or nothing on an error. By default a recording's "
            "cycles are replaced by the file's (the old ones stay in the history), but a file that holds no "
            "cycles is refused, as it would only delete them: give --replace (or --mode replace) to mean that."
        ),
    )
    q.add_argument("project", type=Path)
    q.add_argument("file", type=Path)
    q.add_argument("--recording", help="recording name (needed for ICBHI txt, Audacity and TextGrid files)")
    q.add_argument("--format", choices=("icbhi", "csv", "audacity", "textgrid"))
    q.add_argument("--mode", choices=("replace", "merge"), default=None,
                   help="replace a recording's cycles (kept in the history) or merge with them (default: replace, "
                        "refusing a file with no cycles)")
    q.add_argument("--replace", dest="mode", action="store_const", const="replace",
                   help="replace, even with a file that holds no cycles (which deletes the recording's cycles)")
    q.set_defaults(func=cmd_labels_import)

    p = sub.add_parser(
        "check", help="check that every recording's audio is where it was and unchanged",
        description=(
            "Check every recording's audio file: there, readable, and with the content it had at import. By "
            "default the size, the modification time and a hash of a few blocks are compared, and the whole "
            "file is hashed again only when its modification time moved (or when it was never stamped)."
        ),
    )
    p.add_argument("project", type=Path)
    p.add_argument("--rehash", action="store_true", help="hash every file in full (slow; catches any change)")
    p.set_defaults(func=cmd_check)


def progress_bar(description: str, quiet: bool = False):
    """A tqdm bar on stderr driven by progress(done, total) callbacks; a no-op when quiet."""
    if quiet:
        return None, lambda: None
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, CI), where it would only add noise.
    bar = tqdm(desc=description, unit="rec", file=sys.stderr, dynamic_ncols=True, leave=False, disable=None)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.reset(total=total)
        bar.update(done - bar.n)

    return update, bar.close


def _open_for_import(path: Path) -> Project:
    # lexists: a dangling link or a link loop is refused by opening it, never created through.
    if os.path.lexists(path):
        return Project.open(path)
    print(f"created {path}", file=sys.stderr)
    return Project.create(path)


def _print_report(report) -> int:
    """The report's messages and one summary line; status 2 when a file was refused as a whole."""
    for message in report.messages:
        print(message, file=sys.stderr)
    summary = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in sorted(report.summary.items()))
    print(f"import {report.kind}: {summary or 'nothing to import'}; {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    return 2 if report.refused else 0


def cmd_new(args) -> int:
    with Project.create(args.project) as project:
        print(f"created {project.path} (artifacts in {project.artifacts})")
    return 0


def cmd_import_icbhi(args) -> int:
    from ..data.icbhi import import_icbhi

    _check_folder(args.directory)
    with _open_for_import(args.project) as project:
        update, close = progress_bar("importing", args.quiet)
        try:
            report = import_icbhi(
                project, args.directory, split=args.split, demographics=args.demographics,
                diagnosis=args.diagnosis, folds=args.folds, progress=update,
            )
        finally:
            close()
        return _print_report(report)


def _check_folder(directory: Path, labels: Path | None = None) -> None:
    """The importers' inputs that must exist, checked before a project is created for them."""
    if not directory.is_dir():
        raise CommandError(f"{directory}: no such folder" if not directory.exists() else f"{directory}: not a folder")
    if labels is not None and not labels.is_file():
        raise CommandError(f"{labels}: labels file not found" if not labels.exists() else f"{labels}: not a file")


def cmd_import_folder(args) -> int:
    from ..data.folder import import_folder

    _check_folder(args.directory, args.labels)
    with _open_for_import(args.project) as project:
        update, close = progress_bar("importing", args.quiet)
        try:
            report = import_folder(
                project, args.directory, labels_csv=args.labels, seed=args.seed,
                test_fraction=args.test_fraction, progress=update,
            )
        finally:
            close()
        return _print_report(report)


def format_stats(stats: dict) -> str:
    names = [*LABELS, "total"]
    splits = [s for s in stats["cycles"] if s != "all"] + ["all"]
    width = max(len(s) for s in splits) + 2
    lines = ["cycles".ljust(width) + "".join(n.rjust(9) for n in names)]
    for split in splits:
        row = stats["cycles"][split]
        lines.append(split.ljust(width) + "".join(str(row[n]).rjust(9) for n in names))
    rec = stats["recordings"]
    per_split = ", ".join(f"{rec[s]} {s}" for s in rec if s not in ("total",) and not s.endswith("audio"))
    lines.append("")
    lines.append(f"recordings: {rec['total']} ({per_split}); patients: {stats['patients']}")
    lines.append(
        f"audio: {rec['with_audio']} present, {rec['missing_audio']} missing, {rec['changed_audio']} changed, "
        f"{rec['unreadable_audio']} unreadable"
    )
    devices = ", ".join(f"{name} {d['recordings']} rec / {d['cycles']} cycles" for name, d in stats["devices"].items())
    lines.append(f"devices: {devices or 'none'}")
    if stats.get("edited_cycles"):
        lines.append(f"edited cycles: {stats['edited_cycles']}")
    return "\n".join(lines)


def cmd_stats(args) -> int:
    with Project.open(args.project) as project:
        stats = project.stats()
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0


def cmd_synth(args) -> int:
    from ..data.synth import SynthError, write_synthetic_dataset

    try:
        out = write_synthetic_dataset(
            args.directory, recordings=args.recordings, seed=args.seed, duration=args.duration, force=args.force
        )
    except SynthError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot write {exc.filename or args.directory}: {exc.strerror or exc}") from None
    print(f"wrote {args.recordings} synthetic recordings to {out} (import with: rsc import icbhi PROJECT {out})")
    return 0


def cmd_check(args) -> int:
    from ..project.queries import check_audio

    with Project.open(args.project) as project:
        check = check_audio(project, rehash=args.rehash)
        for name, status, path, reason in check.problems:
            # Recordings imported without audio (path None) are the normal state of a partial
            # dataset; only files that were there and are now gone or changed are worth a line.
            if path is not None:
                print(f"{name}: audio {status} ({path}): {reason}", file=sys.stderr)
    print(check.summary())
    return 0


def _recording_id(project: Project, name: str | None) -> int | None:
    if name is None:
        return None
    rec = project.recording_by_name(name)
    if rec is None:
        raise CommandError(f"no recording named {name!r} in {project.path.name}")
    return rec["id"]


def cmd_labels_export(args) -> int:
    from ..labelfiles import LabelError, export_labels

    with Project.open(args.project) as project:
        rid = _recording_id(project, args.recording)
        try:
            path = export_labels(project, args.output, args.format, None if rid is None else [rid])
        except (LabelError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
    print(f"wrote {path}")
    return 0


def cmd_labels_import(args) -> int:
    from ..labelfiles import LabelError, import_labels

    with Project.open(args.project) as project:
        try:
            results = import_labels(project, args.file, _recording_id(project, args.recording), args.format, args.mode)
        except (LabelError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
    for result in results:
        print(result.summary())
    return 0
