"""The Train view: job dialogs that make exactly the CLI's jobs, and a real worker process training tiny
models on a copy of the demo project while the view follows it (progress, cancel, resume, a failure,
closing and reopening with a job running)."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from types import SimpleNamespace

import pytest
import torch
from conftest import copy_project

from rscapp import dialogs
from rscapp.model import ProjectModel
from rscapp.train import TrainView
from rscapp.train import view as train_view
from rscapp.train.devices import device_options
from rscapp.train.distill_dialog import DistillDialog
from rscapp.train.sweep_dialog import SweepDialog
from rscapp.train.teacher_dialog import TeacherDialog
from trainer import runs
from trainer.cli import main
from trainer.jobs import worker_pids
from trainer.processes import pid_alive
from trainer.project import Project

MICRO = "channels=2,4,8,16"  # a CNN6 small enough that an epoch on the demo takes a few seconds on one core
TRAINING_MS = 90_000


@pytest.fixture(scope="module")
def featured_demo(tmp_path_factory, demo_template):
    """The demo project with its CNN features computed once, so each worker only trains."""
    from trainer.features import load_features
    from trainer.train import training_cycles

    path = copy_project(demo_template, tmp_path_factory.mktemp("train-demo") / "demo.rsc")
    with Project.open(path) as project:
        train, test = training_cycles(project)
        load_features(project, "cnn", train + test)
    return path


@pytest.fixture
def project_path(tmp_path, featured_demo):
    path = copy_project(featured_demo, tmp_path / "demo.rsc")
    yield path
    _stop_workers(path)


def _stop_workers(path) -> None:
    """End the workers these tests started for this project (SIGTERM: each stops after its batch)."""
    for pid in worker_pids(path):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while worker_pids(path) and time.monotonic() < deadline:
        time.sleep(0.1)


def _open_view(qtbot, path):
    model = ProjectModel()
    model.set_project(Project.open(path))
    view = TrainView(model)
    qtbot.addWidget(view)
    view.resize(1300, 700)
    view.show()
    return view


def _close_view(view) -> None:
    project = view.model.project
    view.model.set_project(None)
    project.close()
    view.close()


@pytest.fixture
def view(qtbot, project_path):
    view = _open_view(qtbot, project_path)
    yield view
    if view.worker.process is not None:
        view.worker.stop()
        view.worker.process.wait(30)
    _close_view(view)


def _teacher_dialog(view, seeds="1", epochs=1, pretrained=""):
    dialog = view.new_teacher_ensemble()
    form = dialog.form
    form.arch.setCurrentText("cnn6-tiny")
    form.seeds.setText(seeds)
    form.epochs.setValue(epochs)
    form.set_device("cpu")
    form.model_args.setText(MICRO)
    form.pretrained.setText(pretrained)
    return dialog


def _row(view, run_id):
    return view.queue.row_for(run_id)


def _only_run(view) -> str:
    (run,) = view.model.runs()
    return run.id


# -- the dialogs make the CLI's jobs --------------------------------------------------------------
def _fake_teachers(project, group="fake", scores=(60.0, 70.0, 65.0)):
    """Finished runs to pick teachers from: a status, a score and logits on every cycle are all a student
    needs of its teachers before it trains."""
    import numpy as np

    from trainer.train import training_cycles

    train, test = training_cycles(project)
    cycle_ids = [row["id"] for row in train + test]
    for seed, score in enumerate(scores, start=1):
        run_id = f"{group}-s{seed}"
        runs.insert_run(project, run_id, group=group, kind="teacher", arch="cnn6-tiny", seed=seed,
                        spec={"arch": "cnn6-tiny", "seed": seed}, status="running", code_version="test")
        runs.store_logits(project, run_id, cycle_ids, np.random.default_rng(seed).normal(size=(len(cycle_ids), 4)))
        runs.finish(project, run_id, metrics={"score": score}, checkpoint=None, epoch=1)


def _stored_specs(project, group=None, group_prefix=None) -> list[dict]:
    return [r.spec for r in runs.list_runs(project, group=group, group_prefix=group_prefix)]


def _resolved(specs) -> list[dict]:
    return sorted((s.resolved().to_dict() for s in specs), key=lambda d: (d["group"], d["seed"]))


def test_each_dialog_makes_exactly_the_jobs_the_command_line_makes_from_the_same_choices(qtbot, project_path, capsys):
    common = ["--arch", "cnn6-tiny", "--seeds", "1-2", "--epochs", "3", "--batch-size", "16", "--lr", "0.003",
              "--device", "cpu", "--select", "val", "--model-arg", "channels=2,4,8,16", "--model-arg", "dropout=0.2"]
    with Project.open(project_path) as project:
        _fake_teachers(project)
        all_runs = runs.list_runs(project)

        def fill(form):
            form.arch.setCurrentText("cnn6-tiny")
            form.seeds.setText("1-2")
            form.epochs.setValue(3)
            form.batch_size.setValue(16)
            form.lr.setText("0.003")
            form.set_device("cpu")
            form.set_select("val")
            form.model_args.setText("channels=2,4,8,16 dropout=0.2")

        teacher = TeacherDialog(project)
        fill(teacher.form)
        teacher.form.group.setText("tea")
        student = DistillDialog(project, all_runs)
        fill(student.form)
        student.teachers.set_group("fake")
        student.teachers.set_mode("curated")
        student.teachers.k.setValue(2)
        student.teachers.temperature.setValue(2.0)
        student.teachers.hard_weight.setValue(0.5)
        sweep = SweepDialog(project, all_runs)
        fill(sweep.form)
        sweep.teachers.set_group("fake")
        sweep.ks.setText("0,1,3")
        preset = DistillDialog(project, all_runs)
        fill(preset.form)
        preset.teachers.set_group("fake")
        preset.teachers.preset.setCurrentIndex(preset.teachers.preset.findData("cp-jku"))
        assert not preset.teachers.temperature.isEnabled() and preset.teachers.temperature.value() == 2.0
        for dialog in (teacher, student, sweep, preset):
            qtbot.addWidget(dialog)
        from_dialogs = [_resolved(teacher.specs()), _resolved(student.specs()), _resolved(sweep.specs()),
                        _resolved(preset.specs())]
        assert student.student_jobs().teachers == ["fake-s2", "fake-s3"]  # curated: the two best
        assert student.form.group.placeholderText() == "cnn6-tiny-curated-k2-from-fake"

    assert main(["train", str(project_path), *common, "--group", "tea", "--queue"]) == 0
    assert main(["distill", str(project_path), *common, "--teachers", "fake", "--mode", "curated", "--k", "2",
                 "--temperature", "2", "--hard-weight", "0.5", "--queue"]) == 0
    assert main(["sweep", str(project_path), *common, "--teachers", "fake", "--ks", "0,1,3", "--queue"]) == 0
    assert main(["distill", str(project_path), *common, "--teachers", "fake", "--preset", "cp-jku", "--queue"]) == 0
    capsys.readouterr()
    with Project.open(project_path) as project:
        from_cli = [
            _stored_specs(project, group="tea"),
            _stored_specs(project, group="cnn6-tiny-curated-k2-from-fake"),
            _stored_specs(project, group_prefix="sweep-fake-cnn6-tiny-mean-k"),
            _stored_specs(project, group_prefix="cnn6-tiny-mean-cp-jku-k"),
        ]
    assert [len(specs) for specs in from_cli] == [2, 2, 6, 2]
    assert from_cli[3][0]["targets"]["temperature"] == 2.0 and from_cli[3][0]["targets"]["hard_weight"] == 0.02
    for dialog_specs, cli_specs in zip(from_dialogs, from_cli):
        assert dialog_specs == sorted(cli_specs, key=lambda d: (d["group"], d["seed"]))
    assert from_dialogs[0][0]["model_args"] == {"channels": [2, 4, 8, 16], "dropout": 0.2}


def test_a_large_request_is_confirmed_and_a_bad_choice_is_named_in_the_dialog(qtbot, project_path, monkeypatch):
    asked = []
    monkeypatch.setattr(dialogs, "ask_yes_no", lambda parent, question, title="": asked.append(question) or False)
    with Project.open(project_path) as project:
        dialog = TeacherDialog(project, arch="cnn6-tiny")
        qtbot.addWidget(dialog)
        dialog.form.seeds.setText("1-25")
        dialog.accept()
        assert asked and "25 training runs" in asked[0] and dialog.jobs is None
        dialog.form.seeds.setText("3-1")
        dialog.accept()
        assert "bad seed range" in dialog.error.text() and dialog.jobs is None
        dialog.form.seeds.setText("1")
        dialog.form.model_args.setText("channels")
        dialog.accept()
        assert dialog.error.text() == "model setting 'channels': expected KEY=VALUE"
        assert runs.list_runs(project) == []


def test_the_device_list_names_the_gpu_and_its_memory(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: SimpleNamespace(name="NVIDIA H200", total_memory=141 * 2**30))
    assert device_options() == [("auto", "auto: GPU 0: NVIDIA H200, 141 GiB"), ("cpu", "CPU"),
                                ("cuda", "GPU 0: NVIDIA H200, 141 GiB")]


# -- a real worker ----------------------------------------------------------------------------------
def _weights_file(path):
    """A weights file that fits the micro CNN6 (safetensors, as the model registry reads them)."""
    from safetensors.torch import save_file

    from trainer.models import create_model

    model = create_model("cnn6-tiny", channels=[2, 4, 8, 16])
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def test_jobs_from_the_dialog_train_one_at_a_time_in_a_worker_process_and_a_failure_does_not_stop_the_queue(
        view, qtbot, tmp_path, monkeypatch):
    """A weights file that does not exist is refused in the dialog. Then one worker, two jobs: the first
    fails in the worker (its weights file went away after it was queued), the second trains; then the
    second is cancelled, resumed in a new worker, and finishes."""
    missing = tmp_path / "no-such-weights.safetensors"
    refused = _teacher_dialog(view, pretrained=str(missing))
    refused.accept()
    assert refused.isVisible() and str(missing) in refused.error.text() and view.model.runs() == []
    refused.reject()

    weights = _weights_file(tmp_path / "weights.safetensors")
    _teacher_dialog(view, pretrained=str(weights)).accept()
    weights.unlink()  # long before the worker, still importing torch, gets to build the model
    (failing,) = [r.id for r in view.model.runs()]
    # Ten epochs: one micro epoch takes half a second, too short to be seen running and cancelled in.
    _teacher_dialog(view, seeds="2", epochs=10).accept()
    (good,) = [r.id for r in view.model.runs() if r.id != failing]
    first_worker = view.worker.process.pid
    assert first_worker != os.getpid() and _row(view, good).status == "queued"

    qtbot.waitUntil(lambda: _row(view, failing).status == "failed", timeout=TRAINING_MS)
    message = _row(view, failing).message
    assert message.startswith("Pretrained weights not found.") and str(weights) in message and "\n" not in message
    assert view.notice.isVisible() and failing in view.notice.text()

    view.select_run(good)
    qtbot.waitUntil(lambda: _row(view, good).progress.startswith("epoch 1/10"), timeout=TRAINING_MS)
    assert 0.0 <= _row(view, good).fraction < 1.0 and _row(view, good).status == "running"
    assert view.worker.process.pid == first_worker  # the same worker went on with the next job
    view.buttons["Cancel"].click()
    qtbot.waitUntil(lambda: _row(view, good).status == "cancelled", timeout=TRAINING_MS)
    assert re.fullmatch(r"cancelled (during epoch 1: resume starts it again|after epoch \d: resume continues from there)",
                        _row(view, good).message)
    qtbot.waitUntil(lambda: view.worker.process is None, timeout=10_000)  # it went, once the queue was empty
    assert not pid_alive(first_worker)

    assert view.buttons["Resume"].isEnabled()
    kept = len(runs.run_epochs(view.model.project, good))  # the epochs before the cancel stay
    view.buttons["Resume"].click()
    assert view.worker.process is not None and view.worker.process.pid != first_worker
    qtbot.waitUntil(lambda: len(runs.run_epochs(view.model.project, good)) > kept, timeout=TRAINING_MS)
    resumed = re.compile(rf"epoch +{kept + 1}/10  loss ")
    # The promise: a finished epoch shows within a second.
    qtbot.waitUntil(lambda: resumed.search(view.lines.toPlainText()), timeout=1000)
    qtbot.waitUntil(lambda: _row(view, good).status == "done", timeout=TRAINING_MS)
    assert _row(view, good).fraction == 1.0 and _row(view, good).score
    text = view.lines.toPlainText()
    assert "epoch 10/10  loss " in text and "done: Sp " in text

    monkeypatch.setattr(dialogs, "ask_yes_no", lambda *args, **kwargs: True)
    view.select_run(failing)
    view.buttons["Remove"].click()
    qtbot.waitUntil(lambda: view.queue.rowCount() == 1, timeout=2_000)
    assert not view.notice.isVisible()
    assert view.new_teacher_ensemble() is not None  # the view goes on taking jobs
    view.dialog.reject()


def test_a_job_left_running_shows_again_when_the_view_reopens_and_stops_on_request(qtbot, project_path, monkeypatch):
    first = _open_view(qtbot, project_path)
    _teacher_dialog(first, epochs=3).accept()
    run_id = _only_run(first)
    worker = first.worker.process
    qtbot.waitUntil(lambda: _row(first, run_id).progress.startswith("epoch"), timeout=TRAINING_MS)
    monkeypatch.setattr(train_view, "ask_close_choice", lambda parent, text: train_view.LEAVE)
    assert first.confirm_close()
    _close_view(first)
    assert worker.poll() is None  # closing the view left the worker running

    again = _open_view(qtbot, project_path)
    qtbot.waitUntil(lambda: _row(again, run_id).progress.startswith("epoch"), timeout=5_000)
    assert _row(again, run_id).status == "running" and str(worker.pid) in again.worker_label.text()
    asked = []
    monkeypatch.setattr(train_view, "ask_close_choice",
                        lambda parent, text: asked.append(text) or train_view.STOP)
    assert again.confirm_close()
    assert asked == ["1 training job is running."]
    worker.wait(30)
    again.model.refresh()
    assert _row(again, run_id).status == "cancelled"
    _close_view(again)


def test_a_run_whose_worker_died_is_shown_interrupted_with_resume(qtbot, view):
    project = view.model.project
    runs.insert_run(project, "orphan", group="g", kind="teacher", arch="cnn6-tiny", seed=1,
                    spec={"arch": "cnn6-tiny", "seed": 1, "epochs": 4}, status="running", code_version="test")
    project.db.execute("UPDATE runs SET epoch = 2, progress = ? WHERE id = 'orphan'",
                       [json.dumps({"phase": "train", "epoch": 3, "epochs": 4, "pid": 2**22 + 12345})])
    view.model.refresh()
    row = _row(view, "orphan")
    assert row.status == "interrupted" and "resume continues" in row.message
    view.select_run("orphan")
    assert view.buttons["Resume"].isEnabled() and view.buttons["Remove"].isEnabled()
    assert view.confirm_close()  # nothing is running: closing asks nothing


def test_run_again_queues_a_new_job_with_the_same_stored_settings(view, monkeypatch):
    monkeypatch.setattr(view.worker, "ensure", lambda: False)  # the settings are the point here, not training
    _teacher_dialog(view, seeds="7").accept()
    original = _only_run(view)
    view.select_run(original)
    view.buttons["Run again"].click()
    again = [r for r in view.model.runs() if r.id != original]
    assert len(again) == 1 and again[0].status == "queued"
    assert again[0].spec == runs.get_run(view.model.project, original).spec
    assert view.queue.row_of(again[0].id) == 0  # newest first


@pytest.mark.parametrize("error, line", [
    ("OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\nTraceback ...",
     "Out of GPU memory: lower the batch size or pick a smaller model. CUDA out of memory. Tried to allocate 2.00 GiB"),
    ("ModelError: /w/Cnn6.pth: no such file (expected the PANNs checkpoint Cnn6_mAP=0.343.pth)\nTraceback ...",
     "Pretrained weights not found. /w/Cnn6.pth: no such file (expected the PANNs checkpoint Cnn6_mAP=0.343.pth)"),
    ("TrainError: run g seed 1: cnn6 cannot be built: /w/x.safetensors: checkpoint does not fit CNN6: 20 tensors",
     "Pretrained weights do not match the architecture. run g seed 1: cnn6 cannot be built: /w/x.safetensors: "
     "checkpoint does not fit CNN6: 20 tensors"),
    ("TrainError: demo.rsc: no training cycles with audio (import data first)",
     "No cycles to train on: import recordings with labels first. demo.rsc: no training cycles with audio "
     "(import data first)"),
    ("TrainError: teacher run 't1' does not exist in demo.rsc",
     "The teachers cannot be used. teacher run 't1' does not exist in demo.rsc"),
    ("ValueError: something else entirely\n  File x", "something else entirely"),
    (None, "Failed (no error was recorded)"),
])
def test_a_failed_runs_error_reads_as_one_line_that_says_what_to_do(error, line):
    from rscapp.train.failures import failure_line

    assert failure_line(error) == line
