"""Cycle sets: the cycles a group of runs trains and is scored on, fixed when the group is submitted.

A set holds, per cycle and in training order, what a run reads of it: its split, label, boundaries,
patient and the sha256 of its recording's audio. Every run of a group points at the group's one set
(``runs.cycle_set``), so seeds submitted before and after an import, a relabel or a deleted cycle
still train on the same data, and a run resumes on its own set whatever was imported meanwhile.

Nothing here changes a number silently: :meth:`CycleSet.changes` names every member cycle that was
deleted, moved, relabelled, put in another split or whose audio changed, and training refuses such a
set rather than train or score on something else. A set goes when its last run is removed (a trigger).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..project import Project, now
from ..vocab import LABELS
from .store import RunError

# What a member keeps of its cycle, in the order of the table's columns.
MEMBER_FIELDS = ("cycle_id", "recording_id", "split", "label", "start", "end", "audio_sha256", "patient_id")
SHOWN_CHANGES = 8


@dataclass
class CycleSet:
    """A stored set with the project's cycles as they are now (``live``, by cycle id)."""

    id: int
    group: str | None
    fingerprint: str
    created_at: str
    members: list[dict]
    live: dict[int, dict] = field(default_factory=dict)

    def rows(self, split: str) -> list[dict]:
        """The project's rows of the members of one split, in the set's order."""
        return [self.live[m["cycle_id"]] for m in self.members if m["split"] == split]

    def changes(self) -> "SetChanges":
        """Every way the project's cycles now differ from the set: one line per cycle, one per recording's audio."""
        cycles, audio = [], {}
        for member in self.members:
            row = self.live.get(member["cycle_id"])
            if row is None:
                cycles.append(f"cycle {member['cycle_id']}: no longer in the project")
                continue
            where = f"cycle {row['id']} of {row['recording']} ({member['start']:.2f}-{member['end']:.2f} s)"
            if row["deleted"]:
                cycles.append(f"{where}: deleted")
                continue
            if (row["start"], row["end"]) != (member["start"], member["end"]):
                cycles.append(f"{where}: boundaries now {row['start']:.2f}-{row['end']:.2f} s")
            if row["label"] != member["label"]:
                cycles.append(f"{where}: label {_label(member['label'])} -> {_label(row['label'])}")
            if row["split"] != member["split"]:
                cycles.append(f"{where}: split {member['split']} -> {row['split']}")
            if row.get("patient_id") != member["patient_id"]:
                cycles.append(f"{where}: patient {member['patient_id']} -> {row.get('patient_id')}")
            if row["audio_sha256"] != member["audio_sha256"]:
                audio.setdefault(row["recording"], "audio content changed (sha256)")
            elif row["audio_status"] != "ok":
                audio.setdefault(row["recording"], f"audio {row['audio_status']}")
        return SetChanges(cycles, [f"recording {name}: {what}" for name, what in sorted(audio.items())])


@dataclass
class SetChanges:
    cycles: list[str]  # deleted, moved, relabelled, re-split or re-assigned cycles
    audio: list[str]  # recordings whose audio is not there with the content the set was fixed on

    def __bool__(self) -> bool:
        return bool(self.cycles or self.audio)

    def __len__(self) -> int:
        return len(self.cycles) + len(self.audio)

    def describe(self) -> str:
        lines = self.cycles + self.audio
        shown = "; ".join(lines[:SHOWN_CHANGES])
        return shown + (f"; and {len(lines) - SHOWN_CHANGES} more" if len(lines) > SHOWN_CHANGES else "")


def _label(value: int) -> str:
    return LABELS[value] if 0 <= value < len(LABELS) else str(value)


def live_cycles(project: Project) -> dict[int, dict]:
    """Every cycle of the project (deleted ones too) with its recording's split, patient, audio status and sha256."""
    sha = {rec["id"]: rec.get("sha256") for rec in project.recordings()}
    rows = project.cycles(include_deleted=True)
    for row in rows:
        row["audio_sha256"] = sha.get(row["recording_id"])
    return {row["id"]: row for row in rows}


def members_of(rows: list[dict]) -> list[dict]:
    """Members for the given rows of :func:`live_cycles` (training split first, then test, as given)."""
    return [{"cycle_id": r["id"], "recording_id": r["recording_id"], "split": r["split"], "label": r["label"],
             "start": r["start"], "end": r["end"], "audio_sha256": r["audio_sha256"], "patient_id": r.get("patient_id")}
            for r in rows]


def read_cycle_set(project: Project, set_id: int, live: dict[int, dict] | None = None) -> CycleSet:
    row = project.db.execute("SELECT group_name, fingerprint, created_at FROM cycle_sets WHERE id = ?", [set_id]).fetchone()
    if row is None:
        raise RunError(f"{project.path.name}: no cycle set {set_id}")
    columns = ", ".join(f'"{name}"' for name in MEMBER_FIELDS)
    members = [dict(zip(MEMBER_FIELDS, values)) for values in project.db.execute(
        f"SELECT {columns} FROM cycle_set_members WHERE set_id = ? ORDER BY position", [set_id])]
    return CycleSet(set_id, row[0], row[1], row[2], members, live if live is not None else live_cycles(project))


def fix_cycle_set(project: Project, group: str, members: list[dict], fingerprint: str) -> int:
    """Store a new set of ``members`` (training order); returns its id."""
    with project.transaction():
        cursor = project.db.execute(
            "INSERT INTO cycle_sets(group_name, fingerprint, created_at) VALUES (?, ?, ?)", [group, fingerprint, now()]
        )
        set_id = cursor.lastrowid
        columns = ", ".join(f'"{name}"' for name in MEMBER_FIELDS)
        marks = ", ".join("?" * (len(MEMBER_FIELDS) + 2))
        project.db.conn.executemany(
            f"INSERT INTO cycle_set_members(set_id, position, {columns}) VALUES ({marks})",
            [(set_id, i, *(m[name] for name in MEMBER_FIELDS)) for i, m in enumerate(members)],
        )
    return set_id


def group_cycle_set(project: Project, group: str) -> int | None:
    """The set the runs of ``group`` use (None: no run of it has one yet)."""
    sets = [r[0] for r in project.db.execute(
        "SELECT DISTINCT cycle_set FROM runs WHERE group_name = ? AND cycle_set IS NOT NULL ORDER BY 1", [group])]
    if len(sets) > 1:
        raise RunError(f"the runs of group {group!r} use {len(sets)} cycle sets ({', '.join(map(str, sets))}); "
                       "a group's runs must share one")
    return sets[0] if sets else None


def shared_cycle_set(project: Project, run_ids: list[str]) -> int | None:
    """The set all of ``run_ids`` use, when they use one and the same (a student's teachers, say)."""
    if not run_ids:
        return None
    marks = ",".join("?" * len(run_ids))
    sets = {r[0] for r in project.db.execute(f"SELECT cycle_set FROM runs WHERE id IN ({marks})", list(run_ids))}
    return sets.pop() if len(sets) == 1 else None


def run_cycle_set(project: Project, run_id: str) -> int | None:
    row = project.db.execute("SELECT cycle_set FROM runs WHERE id = ?", [run_id]).fetchone()
    if row is None:
        raise RunError(f"no run {run_id!r} in {project.path.name} (list them with `rsc runs`)")
    return row[0]


def assign_cycle_set(project: Project, run_id: str, set_id: int) -> None:
    with project.transaction():
        project.db.execute("UPDATE runs SET cycle_set = ? WHERE id = ?", [set_id, run_id])
