"""Collaborative models from the Train view (seed paper 002): the dialog queues one lockstep job per seed
with a model per representation, refuses a job of one representation, and a model of a stored job is run
again with its whole job. Then the Distil dialog's line on a CED student's teacher views, and their count
in the queue's progress bar. No worker trains here: the jobs and their stored settings are the point."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from PySide6.QtWidgets import QDialogButtonBox

from rscapp.model import ProjectModel
from rscapp.train import TrainView
from rscapp.train.collab_dialog import CollabDialog
from rscapp.train.distill_dialog import DistillDialog
from rscapp.train.queue_table import run_row
from trainer import runs
from trainer.distill.ced import LogitPasses, passes_path, save_passes
from trainer.project import Project
from trainer.train import training_cycles

MICRO = "channels=2,4,8,16"


@pytest.fixture(autouse=True)
def _models_counted():
    """Each dialog counts its model's parameters on a daemon thread (SettingsForm); one still inside torch
    when the test process exits aborts it (exit status 134 after every test passed)."""
    yield
    for thread in threading.enumerate():
        if thread.name.startswith("model info "):
            thread.join(60)


@pytest.fixture
def view(qtbot, tmp_path, demo_copy, monkeypatch):
    model = ProjectModel()
    model.set_project(Project.open(demo_copy(tmp_path)))
    view = TrainView(model)
    qtbot.addWidget(view)
    monkeypatch.setattr(view.worker, "ensure", lambda: False)  # queued jobs stay queued: nothing trains
    messages = []
    view.statusMessage.connect(messages.append)
    view.messages = messages
    yield view
    project = model.project
    model.set_project(None)
    project.close()


def _collab_dialog(view, seeds="1-2", sets=("cnn", "stft", "mfcc")) -> CollabDialog:
    view.new_collab.click()
    dialog = view.dialog
    assert isinstance(dialog, CollabDialog)
    dialog.form.arch.setCurrentText("cnn6-tiny")
    dialog.form.seeds.setText(seeds)
    dialog.form.epochs.setValue(1)
    dialog.form.set_device("cpu")
    dialog.form.model_args.setText(MICRO)
    for name, box in dialog.sets.items():
        box.setChecked(name in sets)
    return dialog


def _press_ok(dialog) -> None:
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()


def test_a_collab_dialog_queues_one_lockstep_job_per_seed_with_a_model_per_representation(view):
    dialog = _collab_dialog(view)
    assert [name for name, box in dialog.sets.items() if box.isChecked()] == ["cnn", "stft", "mfcc"]
    assert dialog.form.group.placeholderText() == "collab-cnn6-tiny"
    assert dialog.form.seed_count.text() == "6 runs"
    dialog.peer_weight.setValue(0.5)
    dialog.temperature.setValue(2.0)
    _press_ok(dialog)

    assert view.dialog is None and not dialog.isVisible()
    queued = view.model.runs()
    assert len(queued) == 6 and {r.kind for r in queued} == {"collab"} and {r.status for r in queued} == {"queued"}
    assert sorted((r.group, r.seed) for r in queued) == sorted(
        (f"collab-cnn6-tiny-{name}", seed) for name in ("cnn", "stft", "mfcc") for seed in (1, 2))
    by_id = {r.id: r for r in queued}
    for run in queued:
        targets = run.spec["targets"]
        assert run.spec["feature_set"] == targets["representation"] == run.group.rsplit("-", 1)[1]
        assert targets["peer_weight"] == 0.5 and targets["temperature"] == 2.0
        peers = [by_id[p] for p in targets["peers"]]
        # Its peers: the other two representations of its own seed's job.
        assert sorted(p.spec["feature_set"] for p in peers + [run]) == ["cnn", "mfcc", "stft"]
        assert {p.seed for p in peers} == {run.seed}
    assert view.messages[-1] == "queued 6 runs (2 collaborative jobs)"
    assert view.queue.rowCount() == 6


def test_a_collab_dialog_with_one_representation_stays_open_with_the_reason_and_queues_nothing(view):
    dialog = _collab_dialog(view, sets=("stft",))
    assert "at least two" in dialog.groups.text()
    _press_ok(dialog)
    assert dialog.isVisible() and view.dialog is dialog
    assert "at least two different representations" in dialog.error.text()
    assert view.model.runs() == []
    dialog.sets["mfcc"].setChecked(True)
    assert dialog.groups.text() == "Groups: collab-cnn6-tiny-stft, collab-cnn6-tiny-mfcc"
    dialog.form.group.setText("pair")
    assert dialog.groups.text() == "Groups: pair-stft, pair-mfcc"
    _press_ok(dialog)
    assert sorted(r.group for r in view.model.runs()) == ["pair-mfcc", "pair-mfcc", "pair-stft", "pair-stft"]


def test_run_again_on_models_of_a_collaborative_job_queues_the_whole_job_once(view):
    _collab_dialog(view, seeds="3").accept()
    original = {r.id: r for r in view.model.runs()}
    cnn, stft = (next(r.id for r in original.values() if r.spec["feature_set"] == name) for name in ("cnn", "stft"))

    view.select_run(cnn)
    view.buttons["Run again"].click()
    again = [r for r in view.model.runs() if r.id not in original]
    assert len(again) == 3 and {r.status for r in again} == {"queued"}
    assert sorted(r.group for r in again) == sorted(r.group for r in original.values())
    assert {r.seed for r in again} == {3}
    for run in again:  # a job of its own: the new models are each other's peers
        assert set(run.spec["targets"]["peers"]) == {r.id for r in again} - {run.id}
    assert view.messages[-1] == "queued 3 runs (1 collaborative job)"

    # Two models of one job selected: the job is queued again once, not once per model.
    view.actions.run_again([cnn, stft])
    assert len(view.model.runs()) == 9
    assert view.messages[-1] == "queued 3 runs (1 collaborative job)"


def test_resuming_a_model_of_a_collaborative_job_is_refused_and_the_status_line_says_why(view):
    _collab_dialog(view, seeds="1", sets=("cnn", "mfcc")).accept()
    first, _second = (r.id for r in view.model.runs())
    view.actions.cancel([first])
    cancelled = view.queue.row_for(first)
    assert cancelled.status == "cancelled" and "cannot resume" in cancelled.message
    assert view.actions.resume([first]) == []
    assert "collaborative job" in view.messages[-1] and "cannot resume" in view.messages[-1]
    assert runs.get_run(view.model.project, first).status == "cancelled"


# -- a CED student's teacher views ------------------------------------------------------------------
def _finished_teachers(project, group="fake", n=3) -> list[str]:
    """Finished runs with logits on every cycle: all a student needs of its teachers before it trains."""
    train, test = training_cycles(project)
    cycle_ids = [row["id"] for row in train + test]
    ids = [f"{group}-s{seed}" for seed in range(1, n + 1)]
    for seed, run_id in enumerate(ids, start=1):
        runs.insert_run(project, run_id, group=group, kind="teacher", arch="cnn6-tiny", seed=seed,
                        spec={"arch": "cnn6-tiny", "seed": seed}, status="running", code_version="test")
        runs.store_logits(project, run_id, cycle_ids, np.random.default_rng(seed).normal(size=(len(cycle_ids), 4)))
        runs.finish(project, run_id, metrics={"score": 60.0 + seed}, checkpoint=None, epoch=1)
    return ids


def _stored_views(project, name, teachers, cycle_ids, passes):
    """Views as ``rsc logits`` stores them (made-up logits: only whether and what is stored is read here)."""
    shape = (len(cycle_ids), passes)
    save_passes(passes_path(project.artifacts, name), LogitPasses(
        meta={"teachers": teachers, "passes": passes, "num_classes": 4},
        cycle_ids=np.asarray(cycle_ids, dtype=np.int64),
        seeds=np.zeros(shape, dtype=np.int64), digests=np.zeros(shape, dtype=np.int64),
        top_index=np.zeros((*shape, 2), dtype=np.uint8), top_value=np.zeros((*shape, 2), dtype=np.float16)))


def test_the_distil_dialog_in_mode_ced_says_whether_the_teachers_views_are_stored(qtbot, tmp_path, demo_copy):
    with Project.open(demo_copy(tmp_path)) as project:
        teachers = _finished_teachers(project)
        cycles = [row["id"] for row in training_cycles(project)[0]]
        _stored_views(project, "fake-x2-s7", teachers, cycles, passes=2)
        dialog = DistillDialog(project, runs.list_runs(project))
        qtbot.addWidget(dialog)
        dialog.show()
        dialog.teachers.set_group("fake")
        assert dialog.views.isHidden()  # mode mean reads no views
        dialog.teachers.set_mode("ced")
        assert dialog.views.isVisible()
        assert dialog.views.text() == (f"Not made yet: the first student runs the 3 teachers over {len(cycles)} "
                                       "cycles x 4 views first")
        dialog.teachers.passes.setValue(2)
        assert "x 2 views" in dialog.views.text()
        dialog.teachers.view_seed.setValue(7)  # the views stored under that name
        assert dialog.views.text() == f"Stored: 2 views of {len(cycles)} cycles by the 3 teachers (fake-x2-s7)"
        dialog.teachers.set_mode("curated")
        assert dialog.views.isHidden()


def test_a_student_making_its_teachers_views_shows_them_counted_in_its_progress_bar():
    run = runs.Run(id="ced-s1", group="ced", kind="student", arch="cnn6-tiny", seed=1, spec={"epochs": 3},
                   status="running", progress={"phase": "views", "done": 30, "total": 120, "pid": os.getpid()})
    row = run_row(run)
    assert (row.status, row.progress, row.fraction) == ("running", "teacher views 30/120", 0.25)
