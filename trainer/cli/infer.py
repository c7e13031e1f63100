"""Commands that run on recordings: segment (candidate breathing cycles), export (a run to ONNX) and classify.

``classify`` with an exported model imports no torch (the classify-only edition); a run or a group of
runs (``PROJECT:RUN``, ``PROJECT:group:NAME``) is loaded through trainer.train, torch and all.
"""

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
# trainer.infer.classify's DEFAULT_THRESHOLD, written out so that building the parser imports no features
# (a test keeps the two equal).
DEFAULT_THRESHOLD = 0.6


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
    register_export(sub)
    register_classify(sub)


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


def register_export(sub) -> None:
    p = sub.add_parser(
        "export", help="export a finished run to ONNX with its model card",
        description="Write the run's final model as an ONNX file (features in, logits out; the feature set's "
        "normalisation inside) and OUT's .card.json beside it: classes, cycle preparation, feature settings, "
        "training spec, scores, teachers, sha256. `rsc classify OUT AUDIO` then needs no torch.",
    )
    p.add_argument("project", type=Path, help="project file")
    p.add_argument("run", help="run id (see `rsc runs`)")
    p.add_argument("out", type=Path, help="the ONNX file to write (name ending in .onnx)")
    p.add_argument("--int8", action="store_true",
                   help="also write OUT with .int8.onnx: dynamic int8 quantisation, with its speed and Score "
                   "on the project's test split against the float model")
    p.add_argument("--json", action="store_true", help="print the card (and the int8 comparison) as JSON")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from ..infer.export import ExportError, compare_on_test, export_run, quantize_int8
    from ..train import TrainError, code_version, load_run_model

    with Project.open(args.project) as project:
        try:
            card = export_run(project, args.run, load_run_model(project, args.run), args.out, code_version())
        except (ExportError, TrainError) as exc:
            raise CommandError(str(exc)) from None
        files = [args.out]
        if args.int8:
            files.append(args.out.with_suffix(".int8.onnx"))
            quantize_int8(args.out, files[1])
            comparison = compare_on_test(project, files)
    if args.json:
        print(json.dumps({"card": card, "int8": comparison if args.int8 else None}, indent=2))
        return 0
    for path in files:
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} kB) and {path.with_suffix('.card.json').name}")
    if args.int8:
        base = comparison[0]
        for row in comparison:
            print(f"{Path(row['file']).name}: {row['ms_per_cycle']:.2f} ms per cycle (model only), Score "
                  f"{row['score']:.2f} (Sp {row['sp']:.2f}, Se {row['se']:.2f}) on {row['n']} test cycles"
                  + (f"; {row['score'] - base['score']:+.2f} Score, {base['ms_per_cycle'] / row['ms_per_cycle']:.2f}x "
                     "the float model's speed" if row is not base else ""))
    return 0


def register_classify(sub) -> None:
    p = sub.add_parser(
        "classify", help="classify the breathing cycles of audio files with a model",
        description="Per-cycle class probabilities. MODEL: an exported .onnx (its .card.json beside it; no torch "
        "needed), PROJECT:RUN, or PROJECT:group:NAME (an ensemble: the mean of its finished runs' logits). "
        "Cycles come from a label file beside the audio (name.txt, name.TextGrid, name.csv) or --labels, "
        "otherwise from segmentation. Exit status 1 when a file had to be skipped.",
    )
    p.add_argument("model", metavar="MODEL", help="model.onnx, PROJECT:RUN or PROJECT:group:NAME")
    p.add_argument("audio", type=Path, nargs="+", metavar="AUDIO", help="audio files")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable output")
    out.add_argument("--csv", action="store_true", help="one CSV row per cycle")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="top probability below which a cycle is 'uncertain' (default %(default)g)")
    p.add_argument("--segment", choices=METHODS, default="auto", help="segmentation where there are no labels")
    labels = p.add_mutually_exclusive_group()
    labels.add_argument("--labels", type=Path, help="label file with the cycles (one AUDIO only)")
    labels.add_argument("--no-labels", action="store_true", help="segment even where a label file is beside the audio")
    p.add_argument("--project", type=Path,
                   help="store the results in this project's classifications table, with the model's identity and "
                   "version; classifying a recording again with the same model and version replaces its rows")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="write AUDIO's stem .html (spectrogram, cycle table, model card; one self-contained file) "
                   "and .csv into DIR, creating it; reports of that stem already there are replaced")
    p.add_argument("--threads", type=int, help="onnxruntime threads (default: one per core)")
    p.set_defaults(func=cmd_classify)


def load_classifier(spec: str, threads: int | None = None):
    """The model a MODEL argument names: an ONNX file, PROJECT:RUN, or PROJECT:group:NAME."""
    from ..infer.classify import OnnxModel

    path = Path(spec)
    if path.is_file():
        return OnnxModel(path, threads)
    if path.is_dir():
        raise CommandError(f"{spec} is a folder: give model.onnx, PROJECT:RUN or PROJECT:group:NAME")
    if ":" not in spec:
        raise CommandError(f"{spec}: no such model file (give model.onnx, PROJECT:RUN or PROJECT:group:NAME)")
    run_id = group = None
    if ":group:" in spec:
        project_path, group = spec.rsplit(":group:", 1)
    else:
        project_path, run_id = spec.rsplit(":", 1)
    if not Path(project_path).is_file() or not is_project_file(Path(project_path)):
        raise CommandError(f"{project_path}: no such project file")
    return _torch_models(Path(project_path), run_id, group)


def _torch_models(project_path: Path, run_id: str | None, group: str | None):
    from ..infer.classify import ClassifyError
    from ..train.classifier import runs_classifier

    with Project.open(project_path) as project:
        try:
            return runs_classifier(project, run_id, group)
        except ClassifyError as exc:
            raise CommandError(str(exc)) from None


def cmd_classify(args) -> int:
    from ..infer.classify import ClassifyError, classify_file

    if args.labels and len(args.audio) > 1:
        raise CommandError("--labels names the cycles of one recording: give one AUDIO with it")
    if args.report is not None:
        _check_report_dir(args.report, args.audio)
    try:
        model = load_classifier(args.model, args.threads)
    except ClassifyError as exc:
        raise CommandError(str(exc)) from None
    results, skipped = [], 0
    for audio in args.audio:
        try:
            labels = args.labels or (None if args.no_labels else "beside")
            result = classify_file(model, audio, args.threshold, args.segment, labels)
        except (AudioError, ClassifyError, SegmentError) as exc:
            skipped += 1
            text = str(exc)
            print(text if text.startswith(str(audio)) else f"{audio}: {text}", file=sys.stderr)
            continue
        for note in result.notes:
            print(note, file=sys.stderr)
        results.append(result)
        if args.report is not None:
            _write_reports(result, model.card, args.report)
    if args.project is not None and results:
        from ..project import store_classification

        with Project.open(args.project) as project:
            stored = sum(len(store_classification(project, r)) for r in results)
        print(f"stored {stored} classified cycle(s) in {args.project}", file=sys.stderr)
    _print_results(results, args, skipped)
    return 1 if skipped else 0


def _check_report_dir(folder: Path, audio: list[Path]) -> None:
    """Refuse, before anything is classified, a DIR that is a file and two AUDIO whose reports would be one file."""
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"{folder}: is a file, not a folder for the reports (--report DIR)")
    stems: dict[str, Path] = {}
    for path in audio:
        other = stems.setdefault(path.stem, path)
        if other != path:
            raise CommandError(f"{other} and {path} would both write {folder / path.stem}.html: classify them in "
                               "separate commands or with different --report folders")


def _write_reports(result, card: dict | None, folder: Path) -> None:
    from ..infer.report import write_csv_report, write_html_report

    stem = Path(result.path).stem
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_html_report(result, folder / f"{stem}.html", card)
        write_csv_report(result, folder / f"{stem}.csv")
    except OSError as exc:
        raise CommandError(f"{folder / stem}: cannot write the report ({exc.strerror or exc})") from None
    print(f"wrote {folder / stem}.html and .csv", file=sys.stderr)


def _print_results(results, args, skipped: int) -> None:
    from ..infer.classify import CSV_COLUMNS, result_rows

    if args.json:
        print(json.dumps({"model": results[0].model if results else args.model, "threshold": args.threshold,
                          "recordings": [r.to_dict() for r in results], "skipped": skipped}, indent=2))
        return
    if args.csv:
        import csv

        rows = [row for r in results for row in result_rows(r)]
        columns = list(rows[0]) if rows else list(CSV_COLUMNS)
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    for r in results:
        counts = ", ".join(f"{name} {sum(c.label == name for c in r.cycles)}" for name in sorted({c.label for c in r.cycles}))
        print(f"{r.path}: {len(r.cycles)} cycle(s) from {r.cycles_from} by {r.model}: {counts}")
        for c in r.cycles:
            probabilities = " ".join(f"{name} {p:.2f}" for name, p in c.probabilities.items())
            mark = f"  (annotated {c.annotated})" if c.disagrees else ""
            print(f"{c.start:8.3f} {c.end:8.3f}  {c.label:<9} {c.confidence:.2f}  {probabilities}{mark}")
