"""Label files against a project: export a recording's live cycles, import a file's cycles into recordings.

Reading a file never touches the project; :func:`apply_labels` then writes all of a file's cycles in
one transaction (or none of them), each with its ``cycle_edits`` history row, so a bad line half-way
through a file leaves the project as it was. Cycles are checked by the project's one cycle rule
(:mod:`trainer.project.cycles`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..files import write_text_atomic
from ..project import Project, ProjectError, ProjectFileError, same_span, screen
from .formats import FORMAT_NAMES, check_format, format_labels, read_labels
from .interval import Interval, LabelError, printable

MODES = ("replace", "merge")


@dataclass
class LabelImport:
    """What :func:`apply_labels` did, enough to undo it exactly."""

    recording_id: int
    mode: str
    added: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    # (cycle id, label before, label after)
    relabelled: list[tuple[int, int, int]] = field(default_factory=list)
    unchanged: int = 0

    def summary(self) -> str:
        parts = [f"{len(self.added)} added"]
        if self.deleted:
            parts.append(f"{len(self.deleted)} replaced")
        if self.relabelled:
            parts.append(f"{len(self.relabelled)} relabelled")
        if self.unchanged:
            parts.append(f"{self.unchanged} unchanged")
        return ", ".join(parts)


def validate(intervals: Sequence[Interval], duration: float | None = None, source=None) -> list[Interval]:
    """Sorted intervals, or a LabelError at the first line (in file order) that breaks the cycle rule."""
    for item, fault in screen(intervals, duration):
        if fault is not None:
            raise LabelError(source, item.line, fault.message)
    return sorted(intervals, key=lambda c: (c.start, c.end))


def cycles_of(project: Project, recording_id: int) -> list[Interval]:
    name = project.recording(recording_id)["name"]
    return [
        Interval(row["start"], row["end"], row["crackle"], row["wheeze"], file=name)
        for row in project.cycles(recording_id=recording_id)
    ]


def export_labels(
    project: Project, path: str | os.PathLike, fmt: str | None = None, recording_ids: Sequence[int] | None = None
) -> Path:
    """Write the live cycles of one recording (any format) or of several (CSV only) to ``path``."""
    path = Path(path)
    if fmt is None:
        fmt = "textgrid" if path.suffix.lower() == ".textgrid" else "csv" if path.suffix.lower() == ".csv" else "icbhi"
    fmt = check_format(fmt)
    if recording_ids is None:
        recording_ids = [r["id"] for r in project.recordings()]
    recording_ids = list(recording_ids)
    if fmt != "csv" and len(recording_ids) != 1:
        raise ValueError(f"{FORMAT_NAMES[fmt]} holds one recording; use CSV for {len(recording_ids)}")
    cycles: list[Interval] = []
    for rid in recording_ids:
        cycles += cycles_of(project, rid)
    rec = project.recording(recording_ids[0]) if recording_ids else {}
    text = format_labels(fmt, cycles, file=rec.get("name"), duration=rec.get("duration"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(path, text)
    except OSError as exc:
        raise LabelError(path, None, f"cannot write ({exc.strerror or exc})") from None


def _names_match(file: str, rec_name: str) -> bool:
    stem = Path(file).name
    return stem == rec_name or Path(stem).stem == rec_name


def apply_labels(
    project: Project,
    recording_id: int,
    intervals: Sequence[Interval],
    mode: str = "replace",
    source: str | None = None,
    author: str | None = None,
    fmt: str | None = None,
) -> LabelImport:
    """Write imported cycles to one recording in one transaction: all of them, or none on any error.

    ``replace`` deletes (softly, with history) the recording's live cycles first; ``merge`` keeps them,
    relabels a cycle whose span an imported one repeats, and refuses an imported cycle that overlaps one.
    """
    if mode not in MODES:
        raise ValueError(f"unknown import mode {mode!r} (expected one of {', '.join(MODES)})")
    rec = project.recording(recording_id)
    ordered = validate(intervals, rec.get("duration"), source)
    result = LabelImport(recording_id, mode)
    why = f"import of {source or 'labels'}"
    with project.transaction():
        existing = project.cycles(recording_id=recording_id)
        if mode == "replace":
            for row in existing:
                project.delete_cycle(row["id"], author=author, reason=f"replaced by {why}")
                result.deleted.append(row["id"])
            existing = []
        for item in ordered:
            same = next((row for row in existing if same_span(row["start"], row["end"], item.start, item.end)), None)
            if same is not None:
                if same["label"] != item.label:
                    project.update_cycle(same["id"], author=author, reason=why, label=item.label)
                    result.relabelled.append((same["id"], same["label"], item.label))
                else:
                    result.unchanged += 1
                continue
            try:
                cycle_id = project.add_cycle(
                    recording_id, item.start, item.end, item.crackle, item.wheeze,
                    origin="user", author=author, source_line=item.line, action="import",
                )
            except ProjectFileError:
                raise  # the file refused the write (full, read-only): not a fault of this line
            except ProjectError as exc:
                raise LabelError(source, item.line, str(exc)) from None
            result.added.append(cycle_id)
        project.log_import(
            f"labels:{fmt or 'unknown'}",
            source,
            {
                "recording_id": recording_id,
                "recording": rec["name"],
                "mode": mode,
                "added": len(result.added),
                "deleted": len(result.deleted),
                "relabelled": len(result.relabelled),
                "unchanged": result.unchanged,
            },
        )
    return result


def _group_csv_rows(
    project: Project, intervals: list[Interval], recording_id: int | None, source: str
) -> dict[int, list[Interval]]:
    """A CSV's rows by the recording their ``file`` column names (or the given recording's)."""
    groups: dict[int, list[Interval]] = {}
    by_name = {rec["name"]: rec["id"] for rec in project.recordings()}
    target = project.recording(recording_id)["name"] if recording_id is not None else None
    if recording_id is not None:
        groups[recording_id] = []
    for item in intervals:
        if item.file is None:
            if recording_id is None:
                raise LabelError(source, item.line, "the file column is empty (which recording is this?)")
            groups[recording_id].append(item)
            continue
        if target is not None:
            if not _names_match(item.file, target):
                raise LabelError(source, item.line, f"row names {item.file!r}, not the open recording {target!r}")
            groups[recording_id].append(item)
            continue
        match = next((rid for name, rid in by_name.items() if _names_match(item.file, name)), None)
        if match is None:
            raise LabelError(source, item.line, f"no recording named {item.file!r} in this project")
        groups.setdefault(match, []).append(item)
    return groups


def import_labels(
    project: Project,
    path: str | os.PathLike,
    recording_id: int | None = None,
    fmt: str | None = None,
    mode: str | None = None,
    author: str | None = None,
) -> list[LabelImport]:
    """Read a label file and apply it; every recording it touches changes in one transaction, or none does.

    ICBHI, Audacity and TextGrid files need ``recording_id``. A CSV's ``file`` column names recordings;
    with ``recording_id`` given, its rows must name that recording (or leave the column empty).
    ``mode`` None replaces, but refuses a file that holds no cycles, as replacing with it would only
    delete: pass ``mode="replace"`` to mean exactly that.
    """
    path = Path(path)
    fmt, intervals = read_labels(path, fmt)
    source = printable(str(path))  # stored in the import log and the history: no bytes that are not UTF-8
    if mode is None and not intervals:
        raise LabelError(source, None, _empty_file_refusal(project, recording_id))
    if fmt == "csv":
        groups = _group_csv_rows(project, intervals, recording_id, source)
    else:
        if recording_id is None:
            raise ValueError(f"{FORMAT_NAMES[fmt]} files hold no recording name: give the recording")
        groups = {recording_id: list(intervals)}
    results = []
    with project.transaction():
        for rid, items in groups.items():
            results.append(
                apply_labels(project, rid, items, mode=mode or "replace", source=source, author=author, fmt=fmt)
            )
    return results


def _empty_file_refusal(project: Project, recording_id: int | None) -> str:
    if recording_id is None:
        return "holds no cycles: nothing to import"
    rec = project.recording(recording_id)
    live = len(project.cycles(recording_id=recording_id))
    return (
        f"holds no cycles: replacing {rec['name']}'s cycles with it would delete all {live} of them; "
        "ask for replace explicitly (rsc labels import --replace) to do that"
    )
