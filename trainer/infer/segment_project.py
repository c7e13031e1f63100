"""Segmentation against a project: which recordings to segment, storing segments as model cycles, evaluation.

Segments go into a recording through the project's cycle edits (:meth:`Project.add_cycle`, origin
``model``, each with its ``create`` history row), all of a recording's in one transaction, after the
project's one cycle rule (:func:`trainer.project.screen`) has passed all of them: a recording gets
all its segments or none. A recording that already has live cycles is never touched unless the
caller asks to replace them; replaced cycles are deleted the project's way (kept, with history).
"""

from __future__ import annotations

from typing import Callable, Iterable

from ..audio import AudioError
from ..project import Project, ProjectError, screen
from .segment import Segment, SegmentError, SegmentSettings, segment_file
from .segment_eval import TOLERANCES, Match, evaluate_recordings

def recordings_to_segment(project: Project, name: str | None = None, annotated: bool = False) -> list[dict]:
    """The named recording, or every recording without live cycles (``annotated``: every one with some)."""
    if name is not None:
        rec = project.recording_by_name(name)
        if rec is None:
            raise ProjectError(f"no recording named {name!r} in {project.path}")
        return [rec]
    with_cycles = {c["recording_id"] for c in project.cycles()}
    return [rec for rec in project.recordings() if (rec["id"] in with_cycles) == annotated]


def segment_recording(project: Project, recording: dict, method: str = "auto", settings: SegmentSettings = SegmentSettings()) -> list[Segment]:
    """Segments of one recording's audio; ProjectError when its audio is missing or changed, AudioError when unreadable."""
    path = project.audio_path(recording)
    if path is None or recording.get("audio_status") not in ("ok", None):
        raise ProjectError(f"{recording['name']}: audio is {recording.get('audio_status') or 'missing'} ({path})")
    return segment_file(path, method, settings)


def write_segments(
    project: Project, recording_id: int, segments: Iterable[Segment], author: str | None = None, replace: bool = False
) -> list[int]:
    """Store segments as the recording's model cycles in one transaction; returns the new cycle ids."""
    segments = list(segments)
    with project.transaction():
        rec = project.recording(recording_id)
        live = project.cycles(recording_id=recording_id)
        if live and not replace:
            raise ProjectError(
                f"{rec['name']}: has {len(live)} cycle(s) already, and replacing them was not asked for"
            )
        for _, fault in screen(segments, rec.get("duration")):
            if fault is not None:
                raise ProjectError(f"{rec['name']}: segment {fault.message}")
        for row in live:
            project.delete_cycle(row["id"], author=author, reason="replaced by segmentation")
        return [
            project.add_cycle(recording_id, s.start, s.end, origin="model", author=author)
            for s in segments
        ]


def reference_spans(project: Project, recording_id: int) -> list[tuple[float, float]]:
    """The recording's live annotated cycles (any origin but ``model``), as (start, end)."""
    return [(c["start"], c["end"]) for c in project.cycles(recording_id=recording_id) if c["origin"] != "model"]


def evaluate_project(
    project: Project, recordings: Iterable[dict], method: str = "auto", settings: SegmentSettings = SegmentSettings(),
    tolerances=TOLERANCES, on_error: Callable[[dict, Exception], None] | None = None,
) -> dict[float, Match]:
    """Segment each recording and compare with its annotated cycles, summed over recordings.

    A recording whose audio fails raises, or, given ``on_error(recording, error)``, is reported and left out.
    """
    pairs = []
    for rec in recordings:
        reference = reference_spans(project, rec["id"])
        if not reference:
            continue
        try:
            pairs.append((segment_recording(project, rec, method, settings), reference))
        except (AudioError, ProjectError, SegmentError) as exc:
            if on_error is None:
                raise
            on_error(rec, exc)
    if not pairs:
        raise ProjectError(f"{project.path}: no annotated recording to evaluate against")
    return evaluate_recordings(pairs, tolerances)
