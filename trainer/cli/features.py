"""`rsc features`: compute (or find in the cache) the model inputs of a project's cycles."""

from __future__ import annotations

import sys
from pathlib import Path

from ..project import Project
from ..vocab import SPLITS


# The names of trainer.features.sets.FEATURE_SETS, written out so that building the parser does not
# import torch (a test keeps the two equal).
SET_NAMES = ("cnn", "ast", "clap", "stft", "mfcc")


def register(sub) -> None:
    p = sub.add_parser(
        "features",
        help="compute or reuse cached input features (filterbanks, CLAP mels) for a project's cycles",
        description=(
            "Compute the input features of every live cycle (or one split) and store them in the project's "
            "feature cache, or report that the cache already holds them. Cycles whose audio is missing or "
            "changed are skipped and counted."
        ),
    )
    p.add_argument("project", type=Path, help="project file")
    p.add_argument("--set", dest="set_name", required=True, choices=SET_NAMES, help="feature set")
    p.add_argument("--split", choices=SPLITS, help="only this split (default: all cycles)")
    p.add_argument("--device", default="cpu", help="torch device for the filterbank (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_features)


def cmd_features(args) -> int:
    from . import CommandError
    from ..audio import AudioError
    from ..features import FeatureError, ensure_features

    import torch

    try:
        device = torch.device(args.device)
    except RuntimeError as exc:
        raise CommandError(f"--device {args.device!r}: {exc}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CommandError(f"--device {args.device}: no CUDA device available (use --device cpu)")

    with Project.open(args.project) as project:
        every = project.cycles(split=args.split)
        # An in-place edit since the last check shows here, so the recording is skipped by name below
        # instead of stopping the computation half-way.
        for recording_id in {row["recording_id"] for row in every if row["audio_status"] == "ok"}:
            project.verify_audio(recording_id)
        usable = project.cycles(split=args.split, with_audio=True)
        where = f" in the {args.split} split" if args.split else ""
        skipped = len(every) - len(usable)
        if skipped:
            left_out = {row["recording_id"] for row in every} - {row["recording_id"] for row in usable}
            names = sorted(f"{rec['name']} ({rec['audio_status']})" for rec in map(project.recording, left_out))
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            print(
                f"skipping {skipped} cycles of {len(left_out)} recordings whose audio is missing or changed: {shown} "
                f"(see `rsc check {args.project}`)",
                file=sys.stderr,
            )
        if not usable:
            raise CommandError(f"no cycles with usable audio{where} in {args.project}")

        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                from tqdm import tqdm

                bar = tqdm(
                    total=total, desc=f"{args.set_name} features", unit="cycle", file=sys.stderr,
                    dynamic_ncols=True, leave=False, disable=None,
                )
            bar.update(done - bar.n)

        try:
            result = ensure_features(
                project, args.set_name, usable, progress=None if args.quiet else progress, device=device
            )
        except (FeatureError, AudioError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if bar is not None:
                bar.close()

    n, frames, bins = result.features.shape
    state = "cache hit" if result.hit else f"computed in {result.seconds:.1f} s"
    print(f"{args.set_name}: {n} cycles{where} -> ({n}, {frames}, {bins}) float32")
    print(f"cache: {result.path} ({state})")
    return 0
