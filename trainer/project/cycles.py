"""Breathing cycles: the one rule every cycle keeps, and the edits that keep it, each with its history row.

**The rule.** A cycle ends after it starts, starts at or after 0, ends no later than its audio, and
overlaps no other live cycle of its recording, all to within :data:`CYCLE_TOLERANCE` (10 ms), which is
also how close two spans must be to be the same cycle. Label files write times rounded to as few as
two decimals (1,378 of the times in the ICBHI annotation files have two), so a written time may be
5 ms from the instant it names, and two written times 10 ms apart may name the same instant: a cycle
may end up to 10 ms past its audio, overlap a neighbour by up to 10 ms, and a merged span within
10 ms of a live one relabels it. The shortest ICBHI cycle lasts 0.2 s, so no real overlap hides
inside that margin. A start is never allowed below 0 (rounding cannot make a time negative), nor an
end at or before its start (the schema refuses it), nor a time that is not a finite number of seconds
within :data:`MAX_TIME` (a day): such a time is a typo or a unit mix-up, and where the audio is not
there yet to say how long it is, nothing else would catch it.

The importers, label-file import and every edit ask :func:`screen` or :func:`span_fault`. Label
import and edits say what is wrong with :attr:`Fault.message`; the importers put it in their
report's own words.

Cycles are never removed: a deleted cycle keeps its row (``deleted = 1``) so that model outputs keyed
by cycle id stay valid, and every change to a cycle is written, in the same transaction, to the
append-only ``cycle_edits`` table (triggers refuse updates and deletes there).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Protocol, TypeVar

from ..vocab import ORIGINS, flags_of, label_of
from .store import ProjectError, default_author, now

CYCLE_TOLERANCE = 0.01
MAX_TIME = 24 * 3600.0
# What a cycle's history row records of it, before and after each edit.
CYCLE_STATE = ("start", "end", "crackle", "wheeze", "label", "deleted")


class Span(Protocol):
    start: float
    end: float


S = TypeVar("S", bound=Span)


@dataclass(frozen=True)
class Fault:
    """Why a cycle breaks the rule: ``range``, ``order``, ``before_start``, ``past_end`` or ``overlap``."""

    kind: str
    start: float
    end: float
    duration: float | None = None  # the audio's, for past_end
    other: tuple[float, float] | None = None  # the span it overlaps
    other_name: str | None = None  # where that span is: "line 3", "cycle 12"

    @property
    def message(self) -> str:
        if self.kind == "range":
            bad = self.start if not _in_range(self.start) else self.end
            return f"time {bad:g} s is not a finite time within a recording (0 to {MAX_TIME:g} s)"
        if self.kind == "order":
            return f"start {self.start:g} s is not before end {self.end:g} s: a cycle must end after it starts"
        if self.kind == "before_start":
            return f"start {self.start:g} s is before the recording starts"
        if self.kind == "past_end":
            return f"end {self.end:g} s is past the end of the recording ({self.duration:.3f} s)"
        where = f" ({self.other_name})" if self.other_name else ""
        return f"{self.start:g}-{self.end:g} s overlaps {self.other[0]:g}-{self.other[1]:g} s{where}"


def ends_past(end: float, duration: float | None) -> bool:
    """Whether a cycle ending at ``end`` runs past audio of ``duration`` seconds (unknown: never)."""
    return bool(duration) and end > duration + CYCLE_TOLERANCE


def overlaps(start: float, end: float, other_start: float, other_end: float) -> bool:
    return start < other_end - CYCLE_TOLERANCE and end > other_start + CYCLE_TOLERANCE


def same_span(start: float, end: float, other_start: float, other_end: float) -> bool:
    return abs(start - other_start) <= CYCLE_TOLERANCE and abs(end - other_end) <= CYCLE_TOLERANCE


def _in_range(value: float) -> bool:
    return math.isfinite(value) and abs(value) <= MAX_TIME


def span_fault(start: float, end: float, duration: float | None = None) -> Fault | None:
    """What is wrong with a span on its own (range, order, before the start, past the end), or None."""
    if not (_in_range(start) and _in_range(end)):
        return Fault("range", start, end)
    if not end > start:
        return Fault("order", start, end)
    if start < 0:
        return Fault("before_start", start, end)
    if ends_past(end, duration):
        return Fault("past_end", start, end, duration)
    return None


@dataclass(frozen=True)
class LiveSpan:
    """A cycle already in the project, as :func:`screen` meets it: its span and how to name it."""

    start: float
    end: float
    name: str


def screen(
    cycles: Iterable[S], duration: float | None, accepted: Iterable[Span] = ()
) -> Iterator[tuple[S, Fault | None]]:
    """Each cycle with its fault or None, in the given (file) order.

    A cycle is checked against the audio, against ``accepted`` (cycles already in the project) and
    against the earlier cycles that passed, so of two that overlap the later one is at fault. Cycles
    with a ``line`` attribute are named by it, those with a ``name`` by that.
    """
    accepted = list(accepted)
    for cycle in cycles:
        fault = span_fault(cycle.start, cycle.end, duration)
        if fault is None:
            clash = next((c for c in accepted if overlaps(cycle.start, cycle.end, c.start, c.end)), None)
            if clash is None:
                accepted.append(cycle)
            else:
                line = getattr(clash, "line", None)
                fault = Fault(
                    "overlap", cycle.start, cycle.end, other=(clash.start, clash.end),
                    other_name=f"line {line}" if line else getattr(clash, "name", None),
                )
        yield cycle, fault


def cycle_state(row: dict) -> dict:
    return {key: row[key] for key in CYCLE_STATE}


class Cycles:
    """The project's cycle room: reading cycles and their history, and every edit of them."""

    # -- reading ----------------------------------------------------------------------------
    def cycle(self, cycle_id: int) -> dict:
        rows = self.query("SELECT * FROM cycles WHERE id = ?", [cycle_id])
        if not rows:
            raise ProjectError(f"no cycle with id {cycle_id}")
        return rows[0]

    def cycles(
        self,
        recording_id: int | None = None,
        split: str | None = None,
        include_deleted: bool = False,
        with_audio: bool = False,
    ) -> list[dict]:
        """Cycles with their recording's name, split, device and audio status, in a stable order."""
        where, params = [], []
        if recording_id is not None:
            where.append("c.recording_id = ?")
            params.append(recording_id)
        if split is not None:
            where.append("r.split = ?")
            params.append(split)
        if not include_deleted:
            where.append("c.deleted = 0")
        if with_audio:
            where.append("r.audio_status = 'ok'")
        sql = (
            "SELECT c.*, r.name AS recording, r.split AS split, r.device AS device, r.patient_id AS patient_id, "
            "r.chest_location AS chest_location, r.audio_status AS audio_status "
            "FROM cycles c JOIN recordings r ON r.id = c.recording_id"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY r.name, c.start, c.id"
        )
        return self.query(sql, params)

    def has_user_edits(self, recording_id: int) -> bool:
        """Whether anyone or anything but a dataset import has touched the recording's cycles."""
        return self.db.execute(
            "SELECT 1 FROM cycles WHERE recording_id = ? "
            "AND (edited = 1 OR deleted = 1 OR origin != 'dataset') LIMIT 1",
            [recording_id],
        ).fetchone() is not None

    def cycle_history(self, cycle_id: int | None = None, recording_id: int | None = None) -> list[dict]:
        if cycle_id is not None:
            rows = self.query("SELECT * FROM cycle_edits WHERE cycle_id = ? ORDER BY id", [cycle_id])
        elif recording_id is not None:
            rows = self.query("SELECT * FROM cycle_edits WHERE recording_id = ? ORDER BY id", [recording_id])
        else:
            rows = self.query("SELECT * FROM cycle_edits ORDER BY id")
        for row in rows:
            row["before"] = json.loads(row["before"]) if row["before"] else None
            row["after"] = json.loads(row["after"]) if row["after"] else None
        return rows

    # -- the rule against the live cycles ---------------------------------------------------------
    def check_span(self, recording_id: int, start: float, end: float, ignore_id: int | None = None) -> None:
        """ProjectError unless the span keeps the cycle rule among the recording's live cycles."""
        rec = self.recording(recording_id)
        fault = span_fault(start, end, rec.get("duration"))
        if fault is None:
            live = self.db.execute(
                'SELECT id, start, "end" FROM cycles WHERE recording_id = ? AND deleted = 0 AND id != ? ORDER BY start',
                [recording_id, ignore_id if ignore_id is not None else -1],
            )
            for other_id, other_start, other_end in live:
                if overlaps(start, end, other_start, other_end):
                    fault = Fault("overlap", start, end, other=(other_start, other_end), other_name=f"cycle {other_id}")
                    break
        if fault is not None:
            raise ProjectError(f"{rec['name']}: {fault.message}")

    # -- writing: each call one transaction with its history rows ---------------------------------
    def _log_edit(
        self, cycle_id: int, recording_id: int, action: str, before, after, author, reason=None, at=None
    ) -> None:
        self.db.execute(
            "INSERT INTO cycle_edits (cycle_id, recording_id, action, before, after, author, at, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                cycle_id, recording_id, action,
                json.dumps(before) if before is not None else None,
                json.dumps(after) if after is not None else None,
                author or default_author(), at or now(), reason,
            ],
        )

    def _insert_cycle(
        self, recording_id: int, cycle: Any, origin: str, author: str | None, action: str,
        reason: str | None = None, stamp: str | None = None,
    ) -> int:
        """One cycles row and its history row; ``cycle`` has start, end, crackle, wheeze and line."""
        stamp = stamp or now()
        row = {
            "start": float(cycle.start),
            "end": float(cycle.end),
            "crackle": int(bool(cycle.crackle)),
            "wheeze": int(bool(cycle.wheeze)),
            "label": label_of(cycle.crackle, cycle.wheeze),
            "deleted": 0,
        }
        cursor = self.db.execute(
            'INSERT INTO cycles (recording_id, start, "end", crackle, wheeze, label, origin, source_line, '
            "deleted, edited, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)",
            [recording_id, row["start"], row["end"], row["crackle"], row["wheeze"], row["label"], origin,
             getattr(cycle, "line", None), stamp, stamp],
        )
        self._log_edit(cursor.lastrowid, recording_id, action, None, cycle_state(row), author, reason, stamp)
        return int(cursor.lastrowid)

    def add_cycle(
        self,
        recording_id: int,
        start: float,
        end: float,
        crackle: int = 0,
        wheeze: int = 0,
        origin: str = "user",
        author: str | None = None,
        source_line: int | None = None,
        action: str = "create",
        check: bool = True,
    ) -> int:
        if origin not in ORIGINS:
            raise ProjectError(f"unknown cycle origin {origin!r}")
        cycle = _NewCycle(float(start), float(end), crackle, wheeze, source_line)
        with self.transaction():
            if check:
                self.check_span(recording_id, cycle.start, cycle.end)
            return self._insert_cycle(recording_id, cycle, origin, author, action)

    def update_cycle(self, cycle_id: int, author: str | None = None, reason: str | None = None, **changes) -> dict:
        """Change start, end, crackle, wheeze or label (which sets both flags); returns the new row."""
        unknown = set(changes) - {"start", "end", "crackle", "wheeze", "label"}
        if unknown:
            raise ProjectError(f"cannot change {', '.join(sorted(unknown))} of a cycle")
        with self.transaction():
            row = self.cycle(cycle_id)
            if row["deleted"]:
                raise ProjectError(f"cycle {cycle_id} is deleted; restore it before editing it")
            new = dict(row)
            if "label" in changes:
                new["crackle"], new["wheeze"] = flags_of(changes.pop("label"))
            for key in ("start", "end"):
                if key in changes:
                    new[key] = float(changes[key])
            for key in ("crackle", "wheeze"):
                if key in changes:
                    new[key] = int(bool(changes[key]))
            new["label"] = label_of(new["crackle"], new["wheeze"])
            before, after = cycle_state(row), cycle_state(new)
            if before == after:
                return row
            if (new["start"], new["end"]) != (row["start"], row["end"]):
                self.check_span(row["recording_id"], new["start"], new["end"], ignore_id=cycle_id)
            update = {k: new[k] for k in ("start", "end", "crackle", "wheeze", "label")}
            update.update(edited=1, updated_at=now())
            self.db["cycles"].update(cycle_id, update)
            self._log_edit(cycle_id, row["recording_id"], "update", before, after, author, reason)
            return self.cycle(cycle_id)

    def delete_cycle(self, cycle_id: int, author: str | None = None, reason: str | None = None) -> None:
        with self.transaction():
            row = self.cycle(cycle_id)
            if row["deleted"]:
                return
            self.db["cycles"].update(cycle_id, {"deleted": 1, "edited": 1, "updated_at": now()})
            after = dict(cycle_state(row), deleted=1)
            self._log_edit(cycle_id, row["recording_id"], "delete", cycle_state(row), after, author, reason)

    def restore_cycle(self, cycle_id: int, author: str | None = None) -> None:
        with self.transaction():
            row = self.cycle(cycle_id)
            if not row["deleted"]:
                return
            self.check_span(row["recording_id"], row["start"], row["end"], ignore_id=cycle_id)
            self.db["cycles"].update(cycle_id, {"deleted": 0, "edited": 1, "updated_at": now()})
            after = dict(cycle_state(row), deleted=0)
            self._log_edit(cycle_id, row["recording_id"], "restore", cycle_state(row), after, author)

    def split_cycle(self, cycle_id: int, at: float, author: str | None = None) -> tuple[int, int]:
        """Cut a cycle in two at time ``at``; both halves keep its labels. Returns (left id, right id)."""
        with self.transaction():
            row = self.cycle(cycle_id)
            if not row["start"] < at < row["end"]:
                raise ProjectError(f"cannot split cycle {cycle_id} at {at:.3f} s: outside {row['start']:.3f}-{row['end']:.3f} s")
            end = row["end"]
            self.update_cycle(cycle_id, author=author, end=at, reason="split")
            right = self.add_cycle(row["recording_id"], at, end, row["crackle"], row["wheeze"], origin="user", author=author)
            return cycle_id, right


@dataclass(frozen=True)
class _NewCycle:
    start: float
    end: float
    crackle: int
    wheeze: int
    line: int | None
