"""Jobs and the worker: queue, claim, cancel, a worker process killed with SIGKILL, and the CLI."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
import torch
from conftest import copy_project, import_more

from trainer.cli import main
from trainer import runs
from trainer.jobs import run_worker, start_worker_process, submit, worker_pids
from trainer.project import Project
from trainer.runs import cancel, get_run, load_logits, requeue, run_cycle_ids, run_epochs
from trainer.train import TrainSpec, checkpoint_dir, create_run, resume, run_training, training_cycles

MICRO = {"channels": [2, 4, 8, 16]}


def micro_spec(**changes) -> TrainSpec:
    # One thread everywhere: the SIGKILL test compares a run finished here with one begun in a worker process.
    settings = dict(arch="cnn6-tiny", seed=1, group="micro", epochs=3, batch_size=8, lr=3e-3, device="cpu",
                    model_args=MICRO, cpu_threads=1)
    settings.update(changes)
    return TrainSpec(**settings)


@pytest.fixture
def project_path(tmp_path, micro_base):
    return copy_project(micro_base, tmp_path / "p.rsc")


@pytest.fixture
def project(project_path):
    with Project.open(project_path) as opened:
        yield opened


def _logits(project, run_id):
    ids = run_cycle_ids(project, run_id)
    return ids, load_logits(project, [run_id], ids)[:, 0]


def _wait(condition, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_runs_queued_jobs_in_order(project, project_path):
    first = submit(project, micro_spec(epochs=1))
    second = submit(project, micro_spec(epochs=1, seed=2))
    skipped = submit(project, micro_spec(epochs=1, seed=3))
    assert runs.queued_ids(project) == [first, second, skipped]
    assert get_run(project, first).status == "queued"
    assert cancel(project, skipped) == "cancelled"
    handled = run_worker(project_path, once=True)
    assert handled == [first, second]
    for run_id in handled:
        run = get_run(project, run_id)
        assert run.status == "done" and run.metrics["epoch"] == 1
    assert get_run(project, skipped).status == "cancelled"
    assert runs.queued_ids(project) == []


def test_a_worker_given_run_ids_trains_only_those_in_their_order_and_skips_ones_not_queued(project, project_path):
    first = submit(project, micro_spec(epochs=1))
    stopped = submit(project, micro_spec(epochs=1, seed=2))
    last = submit(project, micro_spec(epochs=1, seed=3))
    other = submit(project, micro_spec(epochs=1, seed=4))
    cancel(project, stopped)
    assert run_worker(project_path, once=True, only=[last, stopped, "no-such-run", first]) == [last, first]
    assert [get_run(project, r).status for r in (first, stopped, last, other)] == ["done", "cancelled", "done", "queued"]
    assert get_run(project, last).finished_at < get_run(project, first).finished_at
    assert runs.queued_ids(project) == [other]


def test_claim_is_atomic_between_two_connections(project, project_path):
    job = submit(project, micro_spec(epochs=1))
    with Project.open(project_path) as other:
        assert runs.claim(other) == job
        assert runs.claim(project) is None
    assert get_run(project, job).status == "running"


def test_cancel_a_running_job_keeps_its_checkpoint_and_resumes_exactly(project, project_path):
    reference = create_run(project, micro_spec(epochs=4))
    expected = run_training(project, reference)
    job = submit(project, micro_spec(epochs=4))
    worker = threading.Thread(target=run_worker, args=(project_path,), kwargs={"once": True})
    worker.start()
    try:
        _wait(lambda: len(run_epochs(project, job)) >= 1, what="the first epoch")
        assert cancel(project, job) in ("cancelling", "cancelled")
    finally:
        worker.join(timeout=120)
    run = get_run(project, job)
    assert run.status == "cancelled", run
    assert list(checkpoint_dir(project, job).glob("state-*.safetensors"))
    assert run.epoch < 4
    requeue(project, job)
    assert run_worker(project_path, once=True) == [job]
    assert get_run(project, job).metrics == expected
    ids, logits = _logits(project, job)
    ids_ref, logits_ref = _logits(project, reference)
    assert ids == ids_ref
    np.testing.assert_array_equal(logits, logits_ref)


_import_more = import_more


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_worker_process_killed_with_sigkill_after_an_import_resumes_to_the_same_result(
    project, project_path, micro_data, tmp_path, capsys,
):
    reference = create_run(project, micro_spec(epochs=5, group="reference"))
    expected = run_training(project, reference)
    job = submit(project, micro_spec(epochs=5))
    process = start_worker_process(project_path)
    try:
        _wait(lambda: len(run_epochs(project, job)) >= 1 or process.poll() is not None, timeout=240,
              what="the worker's first epoch")
        added = _import_more(project, micro_data, tmp_path / "more")  # while the worker trains
        assert added
        _wait(lambda: len(run_epochs(project, job)) >= 2 or process.poll() is not None, timeout=240,
              what="the worker's second epoch")
        assert worker_pids(project_path) == [process.pid]
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    log = (Project.artifacts_of(project_path) / "worker.log").read_text(errors="replace")
    assert process.returncode == -signal.SIGKILL, log
    assert worker_pids(project_path) == []  # a killed worker's marker is recognised as stale
    run = get_run(project, job)
    assert run.status == "running" and run.epoch < 5
    # The CLI shows that no process is training it any more.
    assert main(["runs", str(project_path)]) == 0
    assert "running?" in capsys.readouterr().out
    assert resume(project, job) == expected  # on its own cycle set: the import changes nothing for it
    ids, logits = _logits(project, job)
    ids_ref, logits_ref = _logits(project, reference)
    assert ids == ids_ref and not set(added) & set(ids)
    np.testing.assert_array_equal(logits, logits_ref)


# -- the command line ----------------------------------------------------------------------------
MICRO_ARGS = ["--arch", "cnn6-tiny", "--model-arg", "channels=2,4,8,16", "--epochs", "2", "--batch-size", "8",
              "--lr", "3e-3", "--device", "cpu", "--quiet"]


def test_cli_train_distill_runs_and_queue(project_path, capsys):
    assert main(["train", str(project_path), *MICRO_ARGS, "--seeds", "1-2", "--group", "teachers"]) == 0
    out = capsys.readouterr().out
    assert out.count("epoch 1/2  loss ") == 2 and "Score" in out and "ETA" in out
    assert "2 seeds: Sp " in out and "+-" in out
    assert main(["distill", str(project_path), *MICRO_ARGS, "--teachers", "teachers", "--mode", "mean",
                 "--k", "2", "--group", "students"]) == 0
    out = capsys.readouterr().out
    assert "teachers (2, first)" in out and "done " in out
    with Project.open(project_path) as project:
        students = runs.list_runs(project, group="students")
        assert len(students) == 1
        run = students[0]
        assert run.kind == "student" and run.status == "done"
        assert run.spec["targets"]["mode"] == "mean" and len(run.spec["targets"]["teachers"]) == 2
    assert main(["train", str(project_path), *MICRO_ARGS, "--seeds", "5", "--group", "later", "--queue"]) == 0
    assert "queued " in capsys.readouterr().out
    assert main(["runs", str(project_path), "--group", "later"]) == 0
    assert " queued " in capsys.readouterr().out
    assert main(["worker", str(project_path), "--once", "--quiet"]) == 0
    assert "1 run(s) handled" in capsys.readouterr().out
    assert main(["runs", str(project_path)]) == 0
    listing = capsys.readouterr().out
    assert listing.count(" done ") == 4


def test_cli_reports_bad_input_in_one_line(project_path, capsys):
    assert main(["train", str(project_path), *MICRO_ARGS, "--seeds", "3-1"]) == 2
    assert "rsc train: bad seed range" in capsys.readouterr().err
    assert main(["train", str(project_path), "--arch", "cnn7", "--device", "cpu"]) == 2
    assert "unknown model 'cnn7'" in capsys.readouterr().err
    assert main(["distill", str(project_path), *MICRO_ARGS, "--teachers", "nobody"]) == 2
    assert "no runs in group 'nobody'" in capsys.readouterr().err
    assert main(["resume", str(project_path), "missing-run"]) == 2
    assert "no run 'missing-run'" in capsys.readouterr().err


def _run_count(project_path) -> int:
    with Project.open(project_path) as project:
        return project.db["runs"].count


def test_cli_train_refuses_bad_weights_and_model_settings_in_one_line_leaving_no_run(project_path, tmp_path, capsys):
    import pickle

    evil = tmp_path / "evil.safetensors.pth"
    evil.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    other = tmp_path / "resnet.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, other)
    cases = {
        ("--pretrained", str(evil)): f"rsc train: {evil}: refused: it holds more than tensors",
        ("--pretrained", str(other)): f"rsc train: {other}: checkpoint does not fit",
        ("--pretrained", str(tmp_path / "gone.pth")): f"rsc train: {tmp_path / 'gone.pth'}: no such file",
        ("--model-arg", "widht=3"): "rsc train: cnn6: unknown setting(s) widht",
        ("--model-arg", "dropout=x"): "rsc train: cnn6-tiny cannot be built with",
    }
    for extra, message in cases.items():
        for queue in ([], ["--queue"]):
            assert main(["train", str(project_path), *MICRO_ARGS, *extra, *queue]) == 2, extra
            err = capsys.readouterr().err
            assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err, err
    assert _run_count(project_path) == 0


def test_cli_train_names_moved_audio_and_points_to_rsc_check(project_path, capsys):
    with Project.open(project_path) as project:
        rec = project.recordings(split="train")[0]
        audio = project.audio_path(rec)
    moved = audio.with_name("moved-" + audio.name)
    audio.rename(moved)
    try:
        assert main(["train", str(project_path), *MICRO_ARGS]) == 2
    finally:
        moved.rename(audio)
    err = capsys.readouterr().err
    assert f"{rec['name']} (missing: file not found" in err and "`rsc check`" in err and err.count("\n") == 1, err
    assert _run_count(project_path) == 0


def test_cli_refuses_absurd_seed_requests_before_storing_any(project_path, capsys):
    for seeds, message in (("1-100000", "more than 1000 runs"), ("4294967296", "outside 0..2147483647")):
        assert main(["train", str(project_path), *MICRO_ARGS, "--seeds", seeds, "--queue"]) == 2
        assert message in capsys.readouterr().err
    assert _run_count(project_path) == 0
