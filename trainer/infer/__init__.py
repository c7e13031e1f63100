"""Inference on recordings: candidate breathing cycles from the signal (segmentation) and their evaluation."""

from .segment import (
    ENVELOPE, FIXED, METHODS, MIN_SEGMENT, Segment, SegmentError, SegmentSettings, fixed_windows, segment_file,
    segment_wave,
)
from .segment_eval import TOLERANCES, Match, evaluate_recordings, evaluate_segments, format_evaluation, match_segments
from .segment_project import (
    evaluate_project, recordings_to_segment, reference_spans, segment_recording, write_segments,
)

__all__ = [
    "ENVELOPE", "FIXED", "METHODS", "MIN_SEGMENT", "TOLERANCES", "Match", "Segment", "SegmentError",
    "SegmentSettings", "evaluate_project", "evaluate_recordings", "evaluate_segments", "fixed_windows",
    "format_evaluation", "match_segments", "recordings_to_segment", "reference_spans", "segment_file",
    "segment_recording", "segment_wave", "write_segments",
]
