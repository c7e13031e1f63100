"""What the Compare view shows, kept between clicks: the run groups, and each run's stored outputs read once.

Groups and their means over seeds come from the runs' final metrics (``trainer.results.collect_groups``,
milliseconds). Ensembles need every run's stored logits, which take far longer to read than a view may
take to open, so they are read on a pool thread (its own project connection, one run after another, the
groups on screen first) and a group's ensembles appear as soon as its last run is in. After that nothing
is read again unless it changed: a relabel, a delete or its undo re-scores the kept logits with the
cycles as they are now, and a run that finishes costs one run's read.

The model's signals only mark what is stale; :meth:`CompareData.refresh` (called by the view when it is
on screen) does the work, so a relabel made in Listen costs this view nothing until it is looked at.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from trainer.project import Project
from trainer.results import collect_groups
from trainer.results.ensembles import EnsembleOutputs
from trainer.results.views import (
    RunOutputs, SplitCycles, assemble_report, ensemble_entries, first_runs, read_run_outputs, split_cycle_ids,
    split_cycles, stack_outputs,
)
from trainer.runs import Run, list_runs, run_epochs

from ..model import ProjectModel
from ..workers import Cancelled, Task, start


def read_outputs(path: str, run_ids: list[str], split: str, deliver, progress=None) -> int:
    """On a pool thread: each run's stored outputs on the split, handed to ``deliver`` one run at a time
    (after the split's cycle ids they are read on, handed over as the run id None)."""
    with Project.open(path) as project:
        ids = split_cycle_ids(project, split)
        deliver(None, ids)
        for done, run_id in enumerate(run_ids):
            progress(done, len(run_ids), run_id)  # raises Cancelled once the view moved on
            deliver(run_id, read_run_outputs(project, run_id, ids))
    return len(run_ids)


def best_first(group: dict) -> tuple:
    """Sort key of groups: most finished runs first, then the best mean Score."""
    return -group["n"], -(group["score"]["mean"] or 0.0), group["group"]


class _Relay(QObject):
    """Carries a run's outputs from the pool thread to the GUI thread (a queued signal)."""

    delivered = Signal(int, object, object)  # generation, run id, RunOutputs or error text (None, split ids)


class CompareData(QObject):
    groupsChanged = Signal()  # groups, runs or their final metrics changed
    outputsChanged = Signal(object)  # names of groups whose ensembles and matrices changed
    loading = Signal(int, int)  # runs whose outputs are read, runs waiting for theirs

    def __init__(self, model: ProjectModel, split: str = "test", parent: QObject | None = None):
        super().__init__(parent)
        self.model = model
        self.split = split
        self.groups: list[dict] = []
        self._by_name: dict[str, dict] = {}
        self.runs: dict[str, Run] = {}
        self.priority: list[str] = []  # groups on screen: their runs are read first
        self._cycles: SplitCycles | None = None
        self._read: dict[str, RunOutputs | str] = {}  # by run id, as read
        self._read_version: dict[str, str | None] = {}  # the run's finished_at when it was read
        self._requested: dict[str, str | None] = {}  # the same, for the runs the pool thread is reading
        # By group: (its run ids, their outputs stacked on the cycles as they are now).
        self._stacked: dict[str, tuple[tuple[str, ...], EnsembleOutputs | str]] = {}
        self._entries: dict[str, list[dict]] = {}
        self._epochs: dict[str, list[dict]] = {}
        self._stale_groups = self._stale_labels = True
        self._split_ids = None  # the split's cycle ids the outputs were read on
        self._stale_split = False
        self._first_groups = True
        self._generation = 0
        self._task: Task | None = None
        self._relay = _Relay(self)
        self._relay.delivered.connect(self._delivered)
        model.projectChanged.connect(self._project_changed)
        model.runsChanged.connect(self._runs_changed)
        model.cyclesChanged.connect(self._cycles_changed)
        model.recordingsChanged.connect(self._recordings_changed)

    @property
    def project(self) -> Project | None:
        return self.model.project

    # -- what is stale ------------------------------------------------------------------------------
    def _project_changed(self, project) -> None:
        self._cancel()
        self._generation += 1
        self.groups, self._by_name, self.runs, self._cycles, self._split_ids = [], {}, {}, None, None
        self._read, self._read_version, self._stacked, self._entries, self._epochs = {}, {}, {}, {}, {}
        self._stale_groups = self._stale_labels = True
        self._stale_split = False
        self._first_groups = True

    def _recordings_changed(self, recording_ids) -> None:
        # Mostly audio statuses, which change nothing here; a recording moved to another split does.
        self._stale_split = self._stale_labels = True

    def _runs_changed(self, run_ids) -> None:
        self._stale_groups = True
        for run_id in run_ids:
            self._epochs.pop(run_id, None)

    def _cycles_changed(self, cycle_ids, recording_ids) -> None:
        self._stale_labels = True

    @property
    def stale(self) -> bool:
        return self._stale_groups or self._stale_labels or self._stale_split

    @property
    def cycles(self) -> SplitCycles:
        """The split's live cycles with their current labels, read when first needed after a change."""
        if self._cycles is None:
            self._cycles = split_cycles(self.project, self.split)
        return self._cycles

    # -- bringing it up to date (the view calls this when it is on screen) ----------------------------
    def refresh(self) -> None:
        if self.project is None:
            return
        changed: set[str] = set()
        if self._stale_split:
            self._stale_split = False
            if self._split_ids is not None and not np.array_equal(split_cycle_ids(self.project, self.split),
                                                                   self._split_ids):
                self._project_changed(self.project)  # read everything again, on the split as it is now
        if self._stale_labels:
            self._stale_labels = False
            self._cycles = None
            changed |= set(self._stacked)
            self._stacked, self._entries = {}, {}
        if self._stale_groups:
            self._stale_groups = False
            # Both from the project now (not the model's last look), so that every group's run is in runs.
            groups = collect_groups(self.project)
            # A running run's progress changes the runs, not what is shown.
            shown = groups != self.groups or self._first_groups
            self._first_groups = False
            self.groups = groups
            self.runs = {run.id: run for run in list_runs(self.project)}
            self._by_name = {g["group"]: g for g in self.groups}
            for run_id in list(self._read):
                run = self.runs.get(run_id)
                if run is None or not run.finished or run.finished_at != self._read_version[run_id]:
                    self._read.pop(run_id)  # gone, or trained again since: read it again when it is done
            gone = [name for name in self._stacked if not self._still(name)]
            changed |= set(gone)
            for name in gone:
                self._stacked.pop(name)
                self._entries.pop(name, None)
            if shown:
                self.groupsChanged.emit()
        QTimer.singleShot(0, self._load_missing)  # after the first paint: reading is no reason to wait
        if changed:
            self.outputsChanged.emit(sorted(changed))

    def _still(self, name: str) -> bool:
        """Whether a group's stacked outputs still stand for its finished runs, all of them as read."""
        group = self.group(name)
        return group is not None and self._stacked[name][0] == tuple(group["run_ids"]) and all(
            r in self._read for r in group["run_ids"])

    def group(self, name: str) -> dict | None:
        return self._by_name.get(name)

    def missing(self) -> list[str]:
        """Finished runs whose outputs are not read yet: those of the groups on screen first."""
        order = [g for g in self.priority if self.group(g)] + [g["group"] for g in self.groups]
        seen, out = set(), []
        for name in order:
            for run_id in self.group(name)["run_ids"]:
                if run_id not in self._read and run_id not in seen:
                    seen.add(run_id)
                    out.append(run_id)
        return out

    # -- reading outputs ------------------------------------------------------------------------------
    def _load_missing(self) -> None:
        if self._task is not None or self.project is None:
            return
        run_ids = self.missing()
        self.loading.emit(len(self._read), len(run_ids))
        if not run_ids:
            return
        generation, relay = self._generation, self._relay
        self._requested = {run_id: self.runs[run_id].finished_at for run_id in run_ids}

        def deliver(run_id, outputs):
            try:
                relay.delivered.emit(generation, run_id, outputs)
            except RuntimeError:  # the view was closed while its outputs were read: nobody to hand them to
                raise Cancelled("read stored outputs: the view is gone") from None

        task = self._task = Task(read_outputs, str(self.project.path), run_ids, self.split, deliver,
                                 name="read stored outputs")
        task.signals.done.connect(lambda: self._task_done(task))
        start(task)

    def _task_done(self, task: Task) -> None:
        if task is self._task:
            self._task = None
            self._load_missing()  # runs that finished meanwhile

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _delivered(self, generation: int, run_id: str | None, outputs) -> None:
        if run_id is None:
            if generation == self._generation:
                self._split_ids = outputs
            return
        run = self.runs.get(run_id)
        if generation != self._generation or run is None or not run.finished or \
                run.finished_at != self._requested.get(run_id):
            return  # the project changed, or the run was trained again, while it was read: read it again
        self._store(run_id, outputs)
        complete = [g["group"] for g in self.groups if run_id in g["run_ids"] and self.outputs(g["group"]) is not None]
        self.loading.emit(len(self._read), len(self.missing()))
        if complete:
            self.outputsChanged.emit(complete)

    def _store(self, run_id: str, outputs) -> None:
        self._read[run_id], self._read_version[run_id] = outputs, self.runs[run_id].finished_at
        for g in self.groups:
            if run_id in g["run_ids"]:
                self._stacked.pop(g["group"], None)
                self._entries.pop(g["group"], None)

    def load_now(self, names: Iterable[str] | None = None) -> None:
        """Read the outputs of the given groups' runs (all missing ones) here and now, on the view's connection."""
        wanted = self.missing() if names is None else [r for n in names for r in self.group(n)["run_ids"]
                                                        if r not in self._read]
        if not wanted:
            return
        ids = self._split_ids = split_cycle_ids(self.project, self.split)
        for run_id in wanted:
            self._store(run_id, read_run_outputs(self.project, run_id, ids))
        self.outputsChanged.emit([g["group"] for g in self.groups if set(wanted) & set(g["run_ids"])])

    @property
    def is_loading(self) -> bool:
        return self._task is not None

    # -- answers ---------------------------------------------------------------------------------------
    def outputs(self, name: str) -> EnsembleOutputs | str | None:
        """A group's outputs on the split as it is now; an error text; None while some are not read yet."""
        group = self.group(name)
        if group is None or any(r not in self._read for r in group["run_ids"]):
            return None
        if name not in self._stacked:
            outputs = stack_outputs(group["run_ids"], self._read, self.cycles, self.split)
            self._stacked[name] = (tuple(group["run_ids"]), outputs)
        return self._stacked[name][1]

    def ensembles(self, name: str) -> list[dict] | None:
        """The group's rows of the report's ensembles table; None while its outputs are not read."""
        group = self.group(name)
        outputs = self.outputs(name)
        if group is None or outputs is None:
            return None
        if name not in self._entries:
            metrics = {run_id: self.runs[run_id].metrics for run_id in group["run_ids"]}
            self._entries[name] = ensemble_entries(group, outputs, metrics)
        return self._entries[name]

    def report(self) -> dict:
        """What ``rsc report`` builds for this project, every run's outputs read first if need be."""
        self.refresh()
        self.load_now()
        ensembles = [row for g in self.groups for row in (self.ensembles(g["group"]) or [])]
        return assemble_report(self.project, self.groups, ensembles, self.split)

    def system(self, item: tuple) -> tuple[str, EnsembleOutputs | str | None]:
        """(title, outputs) of a table item: ("run", id), ("group", name) or ("ensemble", name, k)."""
        if item[0] == "run":
            run = self.runs.get(item[1])
            if run is None or not run.finished:
                return f"run {item[1]}", f"run {item[1]} is {run.status if run else 'gone'}: no stored outputs"
            if run.id not in self._read:
                return f"run {run.id}", None
            return f"run {run.id}", stack_outputs([run.id], self._read, self.cycles, self.split)
        name = item[1]
        outputs = self.outputs(name)
        group = self.group(name)
        k = item[2] if item[0] == "ensemble" else (group["n"] if group else 0)
        title = f"{name}++ (k={k})" if k > 1 else f"{name} (k=1)"
        if isinstance(outputs, EnsembleOutputs) and k:
            return title, first_runs(outputs, k)
        return title, outputs

    def epochs(self, run_id: str) -> list[dict]:
        if run_id not in self._epochs:
            self._epochs[run_id] = run_epochs(self.project, run_id)
        return self._epochs[run_id]

    def finished_runs(self, group: str) -> list[Run]:
        entry = self.group(group)
        return [self.runs[r] for r in entry["run_ids"]] if entry else []
