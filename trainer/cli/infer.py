"""Commands that run on recordings: segment (candidate breathing cycles from the signal)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from ..audio import AudioError
from ..infer import (
    METHODS, SegmentError, SegmentSettings, evaluate_project, format_evaluation, recordings_to_segment,
    segment_file, segment_recording, write_segments,
)
from ..project import Project, ProjectError
from . import CommandError

SQLITE_MAGIC = b"SQLite format 3\x00"


def register(sub) -> None:
    p = sub.add_parser(
        "segment", help="split recordings into candidate breathing cycles",
        description="Find candidate breathing cycles from the signal. With a project: its recordings without "
        "cycles (or --recording), stored as model cycles with --write. With an audio file: prints them. "
        "Exit status 1 when a recording had to be skipped.",
    )
    p.add_argument("target", type=Path, metavar="PROJECT|AUDIO", help="a project file or an audio file")
    p.add_argument("--recording", help="segment only this recording of the project")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="auto: from the breath envelope, fixed windows where it shows no rhythm; fixed: windows only")
    p.add_argument("--window", type=float, default=SegmentSettings.window, help="fixed window length in s (default %(default)g)")
    p.add_argument("--hop", type=float, help="fixed window hop in s (default: the window length)")
    p.add_argument("--write", action="store_true", help="store the segments as model cycles (one transaction per recording)")
    p.add_argument("--replace", action="store_true", help="with --write and --recording: replace the recording's cycles")
    p.add_argument("--evaluate", action="store_true",
                   help="compare with the project's annotated cycles: precision, recall, F1 at 0.25 and 0.5 s")
    p.add_argument("--author", help="who the history records for --write (default: the user name)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_segment)


def is_project_file(path: Path) -> bool:
    """Whether ``path`` is a project: projects are SQLite files whatever they are named, and no audio format starts so."""
    with open(path, "rb") as handle:
        return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def _settings(args) -> SegmentSettings:
    settings = replace(SegmentSettings(), window=args.window, hop=args.hop if args.hop is not None else args.window)
    try:
        settings.check()
    except SegmentError as exc:
        raise CommandError(str(exc)) from None
    return settings


class Skipped:
    """Recordings left out, each named on stderr; those without usable audio in one line, as an
    ICBHI import without its wav files has hundreds of them."""

    def __init__(self) -> None:
        self.count = 0

    def without_audio(self, recordings: list[dict]) -> list[dict]:
        """The recordings whose audio is usable; the others are counted and said in one line."""
        usable = [r for r in recordings if r.get("audio_status") in ("ok", None)]
        left = [r for r in recordings if r not in usable]
        if left:
            self.count += len(left)
            statuses = ", ".join(sorted({r.get("audio_status") for r in left}))
            print(f"skipped {len(left)} recording(s) whose audio is {statuses} (first: {left[0]['name']})", file=sys.stderr)
        return usable

    def __call__(self, rec: dict, why) -> None:
        self.count += 1
        text = str(why)
        # Most errors already begin with the recording's name; say it once.
        text = text[len(rec["name"]) + 2 :] if text.startswith(f"{rec['name']}: ") else text
        print(f"{rec['name']}: skipped: {text}", file=sys.stderr)


def _rows(segments) -> list[dict]:
    return [s._asdict() for s in segments]


def _print_segments(segments) -> None:
    for s in segments:
        print(f"{s.start:.3f}\t{s.end:.3f}\t{s.method}\t{s.confidence:.2f}")


def cmd_segment(args) -> int:
    if not args.target.exists():
        raise CommandError(f"{args.target}: no such file")
    if args.target.is_dir():
        raise CommandError(f"{args.target} is a folder: give a project file or an audio file")
    settings = _settings(args)
    if args.replace and not (args.write and args.recording):
        raise CommandError("--replace needs --write and --recording (only a named recording's cycles are replaced)")
    if is_project_file(args.target):
        with Project.open(args.target) as project:
            if args.evaluate:
                return _evaluate(project, args, settings)
            return _segment_project(project, args, settings)
    if args.write or args.evaluate or args.recording:
        raise CommandError(f"{args.target} is an audio file: --write, --evaluate and --recording need a project")
    try:
        segments = segment_file(args.target, args.method, settings)
    except (AudioError, SegmentError) as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps({"file": str(args.target), "segments": _rows(segments)}, indent=2))
    else:
        _print_segments(segments)
    return 0


def _segment_project(project: Project, args, settings: SegmentSettings) -> int:
    recordings = recordings_to_segment(project, args.recording)
    if not recordings:
        print(f"{project.path}: every recording has cycles; name one with --recording", file=sys.stderr)
    results, skipped = [], Skipped()
    for rec in skipped.without_audio(recordings):
        if args.write and not args.replace and project.cycles(recording_id=rec["id"]):
            skipped(rec, "it has cycles already; add --replace to replace them (they stay in the history)")
            continue
        try:
            segments = segment_recording(project, rec, args.method, settings)
            ids = write_segments(project, rec["id"], segments, args.author, args.replace) if args.write else []
        except (AudioError, ProjectError, SegmentError) as exc:
            skipped(rec, exc)
            continue
        results.append({"recording": rec["name"], "segments": _rows(segments), "written": ids})
        if not args.json:
            methods = ", ".join(f"{m} {sum(s.method == m for s in segments)}" for m in sorted({s.method for s in segments}))
            action = f"wrote {len(ids)} model cycle(s)" if args.write else f"{len(segments)} segment(s)"
            print(f"{rec['name']}: {action} ({methods or 'none'})")
            if not args.write:
                _print_segments(segments)
    if args.json:
        print(json.dumps({"project": str(project.path), "recordings": results, "skipped": skipped.count}, indent=2))
    return 1 if skipped.count else 0


def _evaluate(project: Project, args, settings: SegmentSettings) -> int:
    if args.write:
        raise CommandError("--evaluate compares with the annotations and writes nothing: leave out --write")
    skipped = Skipped()
    recordings = skipped.without_audio(recordings_to_segment(project, args.recording, annotated=True))
    totals = evaluate_project(project, recordings, args.method, settings, on_error=skipped)
    if args.json:
        figures = {str(tol): m.summary() for tol, m in totals.items()}
        print(json.dumps({"tolerances": figures, "skipped": skipped.count}, indent=2))
    else:
        print(format_evaluation(totals))
    return 1 if skipped.count else 0
