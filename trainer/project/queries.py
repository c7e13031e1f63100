"""Read-only views of a project that more than one caller needs: the Library's tables, counts per split
and class, the audio check over every recording, and the cheap markers that tell a reader what changed.

The Library (``rscapp``), ``rsc stats`` and ``rsc check`` all read through these functions, so a count on
screen and a count on the terminal come from the same query. Each row function returns plain tuples in
the order of its ``*_FIELDS`` tuple: the app turns them into one numpy array per field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from ..vocab import LABELS, SPLITS

if TYPE_CHECKING:  # not at run time: Project.stats may delegate here without an import cycle
    from . import Project

# -- the Library's tables ------------------------------------------------------------------------
RECORDING_FIELDS = (
    "id", "name", "patient", "device", "location", "split", "duration", "audio_status", "path",
    "cycles", "normal", "crackle", "wheeze", "both", "edited",
)
_RECORDINGS_SQL = (
    "SELECT r.id, r.name, coalesce(r.patient_id, ''), coalesce(r.device, ''), coalesce(r.chest_location, ''), "
    "coalesce(r.split, ''), r.duration, r.audio_status, coalesce(r.path, ''), "
    "count(c.id), coalesce(sum(c.label = 0), 0), coalesce(sum(c.label = 1), 0), "
    "coalesce(sum(c.label = 2), 0), coalesce(sum(c.label = 3), 0), coalesce(sum(c.edited), 0) "
    "FROM recordings r LEFT JOIN cycles c ON c.recording_id = r.id AND c.deleted = 0 "
)

CYCLE_FIELDS = (
    "id", "recording_id", "recording", "patient", "split", "device", "start", "end", "label", "origin", "edited",
)
_CYCLES_SQL = (
    "SELECT c.id, c.recording_id, r.name, coalesce(r.patient_id, ''), coalesce(r.split, ''), "
    'coalesce(r.device, \'\'), c.start, c."end", c.label, c.origin, c.edited '
    "FROM cycles c JOIN recordings r ON r.id = c.recording_id WHERE c.deleted = 0 "
)
# SQLite allows 32,766 host parameters; chunks far below that keep each statement small.
_CHUNK = 900


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ids = sorted({int(i) for i in ids})
    for at in range(0, len(ids), _CHUNK):
        yield ids[at : at + _CHUNK]


def recording_rows(project: Project, recording_ids: Iterable[int] | None = None) -> list[tuple]:
    """Every recording (or the given ones) with its live cycles counted per class, in RECORDING_FIELDS order."""
    if recording_ids is None:
        return project.db.execute(_RECORDINGS_SQL + "GROUP BY r.id").fetchall()
    rows: list[tuple] = []
    for chunk in _chunks(recording_ids):
        marks = ",".join("?" * len(chunk))
        rows += project.db.execute(_RECORDINGS_SQL + f"WHERE r.id IN ({marks}) GROUP BY r.id", chunk).fetchall()
    return rows


def cycle_rows(
    project: Project, recording_ids: Iterable[int] | None = None, cycle_ids: Iterable[int] | None = None
) -> list[tuple]:
    """Live cycles (all, those of some recordings, or some by id) with their recording's fields, in CYCLE_FIELDS order.

    A deleted cycle asked for by id is simply not returned: the caller drops it from its table.
    """
    if recording_ids is None and cycle_ids is None:
        return project.db.execute(_CYCLES_SQL).fetchall()
    column, ids = ("c.recording_id", recording_ids) if cycle_ids is None else ("c.id", cycle_ids)
    rows: list[tuple] = []
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        rows += project.db.execute(_CYCLES_SQL + f"AND {column} IN ({marks})", chunk).fetchall()
    return rows


def recording_count(project: Project) -> int:
    return int(project.db.execute("SELECT count(*) FROM recordings").fetchone()[0])


def filter_choices(project: Project) -> dict[str, list[str]]:
    """The values the Library offers in its split and device filters (those that occur, sorted)."""
    return {
        column: [r[0] for r in project.db.execute(
            f"SELECT DISTINCT {column} FROM recordings WHERE coalesce({column}, '') != '' ORDER BY 1"
        )]
        for column in ("split", "device")
    }


# -- counts ----------------------------------------------------------------------------------------
def cycle_counts_by_recording(
    project: Project, recording_ids: Iterable[int] | None = None
) -> dict[int, tuple[str, tuple[int, int, int, int]]]:
    """Each recording's split (``unassigned`` when it has none) and its live cycles per class, by id.

    The parts :func:`sum_cycle_counts` adds up: a reader that keeps them re-reads only the recordings whose
    cycles changed (an index lookup each) instead of counting every cycle again.
    """
    sql = (
        "SELECT r.id, coalesce(r.split, 'unassigned'), c.label, count(c.id) FROM recordings r "
        "LEFT JOIN cycles c ON c.recording_id = r.id AND c.deleted = 0 "
    )
    if recording_ids is None:
        rows = project.db.execute(sql + "GROUP BY r.id, c.label").fetchall()
    else:
        rows = []
        for chunk in _chunks(recording_ids):
            marks = ",".join("?" * len(chunk))
            rows += project.db.execute(sql + f"WHERE r.id IN ({marks}) GROUP BY r.id, c.label", chunk).fetchall()
    per_recording: dict[int, tuple[str, list[int]]] = {}
    for recording_id, split, label, n in rows:
        _, per_label = per_recording.setdefault(recording_id, (split, [0] * len(LABELS)))
        if label is not None:
            per_label[label] = n
    return {rid: (split, tuple(per_label)) for rid, (split, per_label) in per_recording.items()}


def sum_cycle_counts(parts: Iterable[tuple[str, Sequence[int]]]) -> dict[str, dict[str, int]]:
    """Live cycles per split and class: ``{split: {label name: n, "total": n}}``, train and test always
    there, recordings without a split under ``unassigned``, and every split together under ``all``."""
    sums: dict[str, list[int]] = {}
    for split, per_label in parts:
        if not any(per_label):
            continue  # a split appears when it has cycles (train and test always do)
        acc = sums.get(split)
        if acc is None:
            sums[split] = list(per_label)
        else:
            for i, n in enumerate(per_label):
                acc[i] += n
    for split in SPLITS:
        sums.setdefault(split, [0] * len(LABELS))
    cycles = {split: dict(zip(LABELS, acc)) | {"total": sum(acc)} for split, acc in sums.items()}
    total = {name: sum(per[name] for per in cycles.values()) for name in (*LABELS, "total")}
    return dict(sorted(cycles.items())) | {"all": total}


def adjust_cycle_counts(
    counts: dict[str, dict[str, int]],
    removed: Iterable[tuple[str, Sequence[int]]],
    added: Iterable[tuple[str, Sequence[int]]],
) -> dict[str, dict[str, int]]:
    """:func:`sum_cycle_counts` of the parts behind ``counts``, less ``removed`` and plus ``added`` (the old
    and new parts of the recordings that changed), without adding up every part again."""
    sums = {split: [per[name] for name in LABELS] for split, per in counts.items() if split != "all"}
    for sign, parts in ((-1, removed), (1, added)):
        for split, per_label in parts:
            acc = sums.setdefault(split, [0] * len(LABELS))
            for i, n in enumerate(per_label):
                acc[i] += sign * n
    kept = [(split, acc) for split, acc in sums.items() if split in SPLITS or any(acc)]
    return sum_cycle_counts(kept)


def cycle_counts(project: Project) -> dict[str, dict[str, int]]:
    """Live cycles per split and class (see :func:`sum_cycle_counts`); what ``rsc stats`` and the app show."""
    return sum_cycle_counts(cycle_counts_by_recording(project).values())


def audio_counts(project: Project) -> dict[str, int]:
    """Recordings per audio status (``ok``, ``missing``, ``changed``, ``unreadable``), only those that occur."""
    return {status or "missing": n for status, n in project.db.execute(
        "SELECT audio_status, count(*) FROM recordings GROUP BY 1 ORDER BY 1"
    )}


def library_counts(project: Project) -> dict:
    """What the Library's header and the status bar show (see :func:`summarise_counts`)."""
    return summarise_counts(cycle_counts(project), audio_counts(project))


def summarise_counts(cycles: dict, audio: dict[str, int]) -> dict:
    """``{"cycles": per split and class, "recordings": n, "audio": {status: n}, "audio_problems": n}``:
    the recordings whose audio is not usable are every status but ``ok``."""
    return {
        "cycles": cycles,
        "recordings": sum(audio.values()),
        "audio": audio,
        "audio_problems": sum(n for status, n in audio.items() if status != "ok"),
    }


# -- the audio check ---------------------------------------------------------------------------------
@dataclass
class AudioCheck:
    """Recordings per audio status after a check, and the recordings whose audio is not usable."""

    counts: dict[str, int] = field(default_factory=dict)
    # name, status, path, why: for every recording whose audio is not ok
    problems: list[tuple[str, str, Path | None, str | None]] = field(default_factory=list)

    def summary(self) -> str:
        return ", ".join(f"{n} {status}" for status, n in sorted(self.counts.items())) or "no recordings"


def check_audio(project: Project, rehash: bool = False, progress: Callable | None = None) -> AudioCheck:
    """``Project.examine_audio`` on every recording (storing each status); ``progress(done, total, name)``."""
    result = AudioCheck()
    recordings = project.recordings()
    for done, rec in enumerate(recordings):
        if progress is not None:
            progress(done, len(recordings), rec["name"])
        verdict = project.examine_audio(rec, rehash=rehash)
        result.counts[verdict.status] = result.counts.get(verdict.status, 0) + 1
        if verdict.status != "ok":
            result.problems.append((rec["name"], verdict.status, project.audio_path(rec), verdict.reason))
    return result


# -- what changed (for a reader that keeps a copy, such as the app) ------------------------------------
def data_version(project: Project) -> int:
    """SQLite's ``PRAGMA data_version``: changes whenever ANOTHER connection commits to the file."""
    return int(project.db.execute("PRAGMA data_version").fetchone()[0])


def last_edit_id(project: Project) -> int:
    """The newest ``cycle_edits`` row: every change to a cycle writes one, in the same transaction."""
    return int(project.db.execute("SELECT coalesce(max(id), 0) FROM cycle_edits").fetchone()[0])


def edits_since(project: Project, edit_id: int) -> tuple[int, list[int], list[int]]:
    """(newest edit id, cycle ids, recording ids) of the cycle edits after ``edit_id``."""
    rows = project.db.execute(
        "SELECT id, cycle_id, recording_id FROM cycle_edits WHERE id > ? ORDER BY id", [edit_id]
    ).fetchall()
    if not rows:
        return edit_id, [], []
    return rows[-1][0], sorted({r[1] for r in rows}), sorted({r[2] for r in rows})


def recordings_snapshot(project: Project) -> list[tuple]:
    """Every recording's row, by id: equal to an earlier snapshot exactly when no recording changed."""
    return project.db.execute("SELECT * FROM recordings ORDER BY id").fetchall()


def changed_recordings(before: list[tuple], after: list[tuple]) -> list[int]:
    """Ids of the recordings added, removed or changed between two snapshots, sorted."""
    if before == after:
        return []
    old, new = {row[0]: row for row in before}, {row[0]: row for row in after}
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
