"""The fit loop: stored outputs, determinism, exact resume, checkpoint selection, distillation, learning.

Mechanics run a very small CNN6 (channels 2-4-8-16) on a very small synthetic project so that each
epoch takes about a second on one core; the learning test trains tiny-CNN6 teachers (channels 8-16-32-64) and a
mean-teacher student on the session's synthetic dataset and checks the ICBHI score.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import copy_project, import_more

from trainer import runs
from trainer.project import Project
from trainer.runs import OutputsError, get_run, load_logits, run_cycle_ids, run_epochs, store_logits
from trainer.train import (
    FAMILY_DEFAULTS,
    RunStopped,
    TrainError,
    TrainSpec,
    checkpoint_dir,
    create_run,
    load_run_model,
    parse_seeds,
    patient_disjoint_split,
    resume,
    run_training,
    training_cycles,
)

MICRO = {"channels": [2, 4, 8, 16]}


def micro_spec(**changes) -> TrainSpec:
    settings = dict(arch="cnn6-tiny", seed=1, group="micro", epochs=3, batch_size=8, lr=3e-3, device="cpu",
                    model_args=MICRO)
    settings.update(changes)
    return TrainSpec(**settings)


@pytest.fixture
def project(tmp_path, micro_base):
    with Project.open(copy_project(micro_base, tmp_path / "p.rsc")) as opened:
        yield opened


@pytest.fixture(scope="module")
def reference(tmp_path_factory, micro_base):
    """One uninterrupted micro run: (project path, run id, metrics, logits by cycle id, epoch rows)."""
    path = copy_project(micro_base, tmp_path_factory.mktemp("reference") / "ref.rsc")
    with Project.open(path) as project:
        run_id = create_run(project, micro_spec())
        metrics = run_training(project, run_id)
        ids = run_cycle_ids(project, run_id)
        logits = load_logits(project, [run_id], ids)[:, 0]
        epochs = run_epochs(project, run_id)
    return path, run_id, metrics, dict(zip(ids, logits)), epochs


def _logits(project, run_id):
    ids = run_cycle_ids(project, run_id)
    return dict(zip(ids, load_logits(project, [run_id], ids)[:, 0]))


def _same_logits(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for cid in a:
        np.testing.assert_array_equal(a[cid], b[cid], err_msg=f"cycle {cid}")


def _deterministic(epochs: list[dict]) -> list[dict]:
    drop = {"seconds", "eta_s", "at"}
    return [{k: v for k, v in e.items() if k not in drop} for e in epochs]


# -- outputs ----------------------------------------------------------------------------------------
def test_store_and_load_logits_by_cycle_id(project):
    rid = create_run(project, micro_spec())
    train, test = training_cycles(project)
    ids = [r["id"] for r in train + test]
    values = np.random.default_rng(0).normal(size=(len(ids), 4)).astype(np.float32)
    store_logits(project, rid, ids, values)
    assert run_cycle_ids(project, rid) == sorted(ids)
    # Any order of cycle ids gives the matching rows, bit for bit.
    order = list(reversed(ids))
    back = load_logits(project, [rid, rid], order)
    assert back.shape == (len(ids), 2, 4)
    np.testing.assert_array_equal(back[:, 0], values[::-1])
    np.testing.assert_array_equal(back[:, 1], values[::-1])
    missing = max(ids) + 1000
    with pytest.raises(OutputsError, match=rf"run {rid} has no stored logits for cycle {missing}"):
        load_logits(project, [rid], ids + [missing])
    with pytest.raises(OutputsError, match="no run 'nope'"):
        load_logits(project, ["nope"], ids)
    with pytest.raises(ValueError, match="not finite"):
        store_logits(project, rid, ids[:1], [[0.0, math.nan, 0.0, 0.0]])


# -- specification ------------------------------------------------------------------------------
def test_seeds_syntax():
    assert parse_seeds("1-5") == [1, 2, 3, 4, 5]
    assert parse_seeds("1,3,5") == [1, 3, 5]
    assert parse_seeds("2") == [2]
    assert parse_seeds("1-2,7") == [1, 2, 7]
    for bad in ("", "5-1", "a", "1,1"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_family_defaults_follow_the_reference():
    cnn = TrainSpec(arch="cnn6", device="cpu").resolved()
    assert (cnn.lr, cnn.batch_size, cnn.epochs, cnn.feature_set) == (1e-3, 128, 200, "cnn")
    assert cnn.spec_augment is True
    ast = TrainSpec(arch="ast", device="cpu").resolved()
    assert (ast.lr, ast.weight_decay, ast.batch_size, ast.epochs, ast.amp, ast.scheduler) == (
        5e-5, 1e-6, 8, 50, True, "cosine"
    )
    bts = TrainSpec(arch="bts", device="cpu").resolved()
    assert bts.feature_set == "clap" and bts.spec_augment is False
    assert FAMILY_DEFAULTS["transformer"]["lr"] == 5e-5
    override = TrainSpec(arch="ast", lr=1e-4, epochs=3, device="cpu").resolved()
    assert (override.lr, override.epochs) == (1e-4, 3)
    with pytest.raises(TrainError, match="unknown model 'cnn7'"):
        TrainSpec(arch="cnn7").resolved()
    with pytest.raises(TrainError, match="selection"):
        TrainSpec(arch="cnn6", select="best").resolved()


def test_validation_split_is_patient_disjoint_and_shared_by_seeds(project):
    train, _ = training_cycles(project)
    fit, val = patient_disjoint_split(train, 0.3)
    assert len(fit) + len(val) == len(train) and len(val) > 0 and len(fit) > 0
    patients = lambda pos: {train[i]["patient_id"] for i in pos}
    assert not patients(fit) & patients(val)
    again, val_again = patient_disjoint_split(train, 0.3)
    np.testing.assert_array_equal(val, val_again)


# -- the loop ------------------------------------------------------------------------------------
def test_run_stores_metrics_logits_and_checkpoint(project, reference):
    _, ref_id, metrics, _, epochs = reference
    rid = create_run(project, micro_spec())
    out = run_training(project, rid)
    run = get_run(project, rid)
    assert run.status == "done" and run.epoch == 3 and run.kind == "teacher"
    assert set(out) >= {"sp", "se", "score", "confusion", "selection", "epoch"}
    assert out["selection"] == "last" and out["epoch"] == 3
    assert np.array(out["confusion"]).sum() == out["n"]
    assert out["score"] == pytest.approx((out["sp"] + out["se"]) / 2)
    # Spec, provenance and one progress row per epoch are stored.
    assert run.spec["lr"] == 3e-3 and run.spec["model_args"] == MICRO
    assert run.code_version and len(run.data_fingerprint) == 64
    rows = run_epochs(project, rid)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all({"loss", "sp", "se", "score", "seconds", "eta_s"} <= set(r) for r in rows)
    # Logits cover every train and test cycle with audio, keyed by cycle id ...
    train, test = training_cycles(project)
    assert run_cycle_ids(project, rid) == sorted(r["id"] for r in train + test)
    # ... and are the final model's outputs on exactly that cycle.
    from trainer.features import load_features

    model = load_run_model(project, rid)
    probe = [test[0], train[-1]]
    with torch.no_grad():
        fresh = model(load_features(project, "cnn", probe).float()).numpy()
    stored = load_logits(project, [rid], [r["id"] for r in probe])[:, 0]
    np.testing.assert_allclose(stored, fresh, rtol=1e-5, atol=1e-5)
    ckpt = project.resolve_path(run.checkpoint)
    assert ckpt.suffix == ".safetensors" and ckpt.exists()
    # Determinism: the same spec and seed give the same metrics and logits as the reference run.
    assert out == metrics
    _same_logits(_logits(project, rid), reference[3])
    assert _deterministic(rows) == _deterministic(epochs)


def test_other_seed_gives_other_result(project, reference):
    rid = create_run(project, micro_spec(seed=2, epochs=1))
    run_training(project, rid)
    first = reference[4][0]
    other = run_epochs(project, rid)[0]
    assert other["loss"] != first["loss"]


def test_interrupted_run_resumes_to_the_uninterrupted_result(project, reference):
    _, _, metrics, logits, epochs = reference
    rid = create_run(project, micro_spec())
    batches = {"n": 0}

    def stop_mid_epoch_two():
        batches["n"] += 1
        return len(run_epochs(project, rid)) == 1 and batches["n"] > 3

    with pytest.raises(RunStopped):
        run_training(project, rid, should_stop=stop_mid_epoch_two)
    run = get_run(project, rid)
    assert run.status == "cancelled" and run.epoch == 1
    assert run_cycle_ids(project, rid) == []
    # Resumed in a process set up differently: the thread count of the checkpoint is used again.
    before = torch.get_num_threads()
    torch.set_num_threads(before + 1)
    try:
        out = resume(project, rid)
    finally:
        torch.set_num_threads(before)
    assert out == metrics
    _same_logits(_logits(project, rid), logits)
    assert _deterministic(run_epochs(project, rid)) == _deterministic(epochs)
    with pytest.raises(TrainError, match="already done"):
        resume(project, rid)


class _Killed(BaseException):
    """Stands in for kill -9: nothing after it runs in the training process."""


def test_a_run_killed_between_its_epoch_row_and_its_checkpoint_redoes_that_epoch(project, reference, monkeypatch):
    import trainer.train.checkpoint as checkpoint
    from trainer.train.checkpoint import load_weights

    _, _, metrics, logits, epochs = reference
    rid = create_run(project, micro_spec())
    real = checkpoint.save_weights

    def killed_before_the_second_state(tensors, path, metadata):
        if path.name.startswith("state-") and metadata["epoch"] == "2":
            raise _Killed()
        return real(tensors, path, metadata)

    monkeypatch.setattr(checkpoint, "save_weights", killed_before_the_second_state)
    with pytest.raises(_Killed):
        run_training(project, rid)
    monkeypatch.undo()
    # Epoch 2's row was written, its state was not: the project is one epoch ahead of the checkpoint.
    assert [e["epoch"] for e in run_epochs(project, rid)] == [1, 2]
    folder = checkpoint.checkpoint_dir(project, rid)
    assert sorted(p.name for p in folder.glob("state-*")) == ["state-0001.safetensors"]
    assert load_weights(folder / "state-0001.safetensors")[1]["epoch"] == "1"
    out = resume(project, rid)
    assert out == metrics
    _same_logits(_logits(project, rid), logits)
    assert _deterministic(run_epochs(project, rid)) == _deterministic(epochs)


def test_a_checkpoint_whose_epochs_are_gone_from_the_project_is_refused(project):
    from trainer import runs

    rid = create_run(project, micro_spec(epochs=2))
    with pytest.raises(RunStopped):
        run_training(project, rid, should_stop=lambda: len(run_epochs(project, rid)) == 1)
    runs.truncate_epochs(project, rid, 0)
    with pytest.raises(TrainError, match="holds 0 of the 1 epochs"):
        resume(project, rid)


def test_resume_refuses_changed_data(project):
    rid = create_run(project, micro_spec(epochs=2))
    with pytest.raises(RunStopped):
        run_training(project, rid, should_stop=lambda: len(run_epochs(project, rid)) == 1)
    train, _ = training_cycles(project)
    project.update_cycle(train[0]["id"], label=(train[0]["label"] + 1) % 4, reason="test")
    changed = rf"run {rid}'s cycle set, fixed .*, changed since: cycle {train[0]['id']} of .*: label"
    with pytest.raises(TrainError, match=changed):
        resume(project, rid)
    assert get_run(project, rid).status == "failed"


@pytest.mark.parametrize("select", ["val", "test"])
def test_checkpoint_selection(project, select):
    rid = create_run(project, micro_spec(select=select, val_fraction=0.3))
    out = run_training(project, rid)
    rows = run_epochs(project, rid)
    key = "val_score" if select == "val" else "score"
    best = max(rows, key=lambda r: (r[key], -r["epoch"]))
    assert out["selection"] == select and out["epoch"] == best["epoch"]
    if select == "test":
        assert "test set" in out["protocol"]
        assert out["score"] == pytest.approx(best["score"])
    else:
        assert out["val"]["score"] == pytest.approx(best["val_score"])
        assert out["val"]["cycles"] > 0
        assert all(r["val_score"] is not None for r in rows)
    # Logits stored are those of the selected epoch's weights: their test score is the reported one.
    from trainer.evaluate import icbhi_score

    _, test = training_cycles(project)
    stored = load_logits(project, [rid], [r["id"] for r in test])[:, 0]
    again = icbhi_score([r["label"] for r in test], stored.argmax(1))
    assert again["score"] == pytest.approx(out["score"])


def test_student_distils_from_stored_teacher_logits(project):
    teachers = []
    for seed in (1, 2):
        rid = create_run(project, micro_spec(seed=seed, epochs=1, group="teachers"))
        run_training(project, rid)
        teachers.append(rid)
    targets = {"kind": "soft", "teachers": teachers, "mode": "random", "k": 2}
    sid = create_run(project, micro_spec(epochs=2, group="students", targets=targets))
    out = run_training(project, sid)
    run = get_run(project, sid)
    assert run.kind == "student" and run.status == "done"
    assert run.spec["targets"]["temperature"] == 1.0 and run.spec["targets"]["hard_weight"] == 0.0
    assert out["selection"] == "last"
    # Deterministic as well, including the per-epoch teacher draws of random mode.
    sid2 = create_run(project, micro_spec(epochs=2, group="students", targets=targets))
    assert run_training(project, sid2) == out
    with pytest.raises(TrainError, match="not done"):
        pending = create_run(project, micro_spec(group="teachers"))
        create_run(project, micro_spec(targets={"kind": "soft", "teachers": [pending], "mode": "mean"}))


@pytest.mark.parametrize("student", ["resnet18-tiny", "ast-tiny"])
def test_student_of_another_architecture_and_feature_set(project, student):
    teacher = create_run(project, micro_spec(epochs=1, group="cnn-teachers"))
    run_training(project, teacher)
    targets = {"kind": "soft", "teachers": [teacher], "mode": "mean"}
    sid = create_run(project, TrainSpec(arch=student, epochs=1, batch_size=8, device="cpu", group="students",
                                        targets=targets))
    out = run_training(project, sid)
    run = get_run(project, sid)
    assert run.status == "done" and run.spec["feature_set"] == ("ast" if student == "ast-tiny" else "cnn")
    assert run_cycle_ids(project, sid) == run_cycle_ids(project, teacher)
    assert 0 <= out["score"] <= 100 or math.isnan(out["score"])


def test_cycles_without_audio_are_left_out(project):
    train, test = training_cycles(project)
    gone = train[0]["recording_id"]
    with project.transaction():
        project.db.execute("UPDATE recordings SET audio_status = 'missing' WHERE id = ?", [gone])
    rid = create_run(project, micro_spec(epochs=1))
    run_training(project, rid)
    expected = sorted(r["id"] for r in train + test if r["recording_id"] != gone)
    assert run_cycle_ids(project, rid) == expected


def test_diverging_run_fails_with_a_clear_error(project, monkeypatch):
    import trainer.train.tasks

    real = trainer.train.tasks.distillation_loss
    monkeypatch.setattr(trainer.train.tasks, "distillation_loss", lambda *a, **k: real(*a, **k) * math.nan)
    rid = create_run(project, micro_spec(epochs=1))
    with pytest.raises(TrainError, match="loss became nan in epoch 1"):
        run_training(project, rid)
    run = get_run(project, rid)
    assert run.status == "failed" and "loss became nan" in run.error
    assert run_cycle_ids(project, rid) == []


# -- reliability: checkpoints that are damaged, a cycle set per group, cancel, refused setups --------


def _stopped_after(project, epochs_done: int, **changes) -> str:
    """A run cancelled once ``epochs_done`` epochs are durable (3 epochs in all unless changed)."""
    rid = create_run(project, micro_spec(**changes))
    with pytest.raises(RunStopped):
        run_training(project, rid, should_stop=lambda: len(run_epochs(project, rid)) == epochs_done)
    return rid


def _flip_sign(path, name_part: str = "model.") -> None:
    """Rewrite a checkpoint with one tensor's sign flipped, keeping its metadata: a valid file with other numbers."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    key = next(k for k in tensors if name_part in k and tensors[k].is_floating_point() and tensors[k].abs().sum() > 0)
    tensors[key] = -tensors[key]
    save_file(tensors, str(path), metadata=meta)


def _warnings(events: list[dict]) -> list[str]:
    return [e["message"] for e in events if e["phase"] == "warning"]


def test_a_truncated_newest_checkpoint_is_passed_over_and_the_run_ends_as_an_uninterrupted_one(project, reference):
    _, _, metrics, logits, epochs = reference
    rid = _stopped_after(project, 2)
    newest = checkpoint_dir(project, rid) / "state-0002.safetensors"
    newest.write_bytes(newest.read_bytes()[:1000])  # as a full disk or a failing drive can leave it
    events: list[dict] = []
    assert resume(project, rid, progress=events.append) == metrics
    (warning,) = _warnings(events)
    assert str(newest) in warning and "damaged" in warning and "continues from epoch 1" in warning
    _same_logits(_logits(project, rid), logits)
    assert _deterministic(run_epochs(project, rid)) == _deterministic(epochs)


def test_a_checkpoint_with_a_tensor_sign_flipped_is_never_trained_on(project, reference):
    _, _, metrics, logits, _ = reference
    rid = _stopped_after(project, 2)
    folder = checkpoint_dir(project, rid)
    _flip_sign(folder / "state-0002.safetensors")
    events: list[dict] = []
    assert resume(project, rid, progress=events.append) == metrics  # the epoch before it, redone: the same result
    assert "sha256 differs" in _warnings(events)[0]
    _same_logits(_logits(project, rid), logits)
    # With both kept states altered there is nothing to trust: refused by name, no result, no traceback.
    other = _stopped_after(project, 2)
    folder = checkpoint_dir(project, other)
    for name in ("state-0001.safetensors", "state-0002.safetensors"):
        _flip_sign(folder / name)
    with pytest.raises(TrainError, match="none of its last checkpoints can be trusted") as refused:
        resume(project, other)
    assert all(str(folder / name) in str(refused.value) for name in ("state-0001.safetensors", "state-0002.safetensors"))
    assert f"rsc resume --restart {project.path} {other}" in str(refused.value)
    run = get_run(project, other)
    assert run.status == "failed" and run_cycle_ids(project, other) == []
    # ... and a restart from the first epoch gives the uninterrupted result.
    assert resume(project, other, restart=True) == metrics
    _same_logits(_logits(project, other), logits)


def test_a_damaged_first_checkpoint_starts_the_run_again_and_a_damaged_best_one_is_refused(project, reference):
    _, _, metrics, logits, _ = reference
    rid = _stopped_after(project, 1)
    state = checkpoint_dir(project, rid) / "state-0001.safetensors"
    state.write_bytes(b"")
    events: list[dict] = []
    assert resume(project, rid, progress=events.append) == metrics
    assert "trains again from its first epoch" in _warnings(events)[0]
    _same_logits(_logits(project, rid), logits)
    best = _stopped_after(project, 2, select="test")
    best_file = checkpoint_dir(project, best) / "best.safetensors"
    _flip_sign(best_file, "")
    with pytest.raises(TrainError, match=rf"{best_file}: damaged: its sha256 differs.*--restart"):
        resume(project, best)


def test_a_final_model_file_that_changed_is_refused_by_name(project):
    rid = create_run(project, micro_spec(epochs=1))
    run_training(project, rid)
    assert load_run_model(project, rid) is not None
    path = project.resolve_path(get_run(project, rid).checkpoint)
    _flip_sign(path, "")
    with pytest.raises(TrainError, match=rf"{path}: damaged: its sha256 differs.*stored metrics and logits"):
        load_run_model(project, rid)
    path.write_bytes(b"\x80\x04not a checkpoint")
    with pytest.raises(TrainError, match=rf"{path}: damaged: .* bytes"):
        load_run_model(project, rid)


@pytest.mark.parametrize("moment", ["after the last epoch", "during the final outputs"])
def test_a_cancel_in_the_last_epoch_is_answered_cancelling_and_honoured(project, reference, moment):
    _, _, metrics, logits, _ = reference
    rid = create_run(project, micro_spec())
    answers = []

    def progress(event):
        last_epoch_saved = event["phase"] == "epoch" and event["epoch"] == 3
        final_outputs = event["phase"] == "logits" and event["done"] == 0
        if (last_epoch_saved if moment == "after the last epoch" else final_outputs) and not answers:
            answers.append(runs.cancel(project, rid))

    with pytest.raises(RunStopped):
        run_training(project, rid, progress=progress)
    assert answers == ["cancelling"]
    run = get_run(project, rid)
    assert run.status == "cancelled" and run.epoch == 3 and run_cycle_ids(project, rid) == []
    assert resume(project, rid) == metrics
    _same_logits(_logits(project, rid), logits)


_import_more = import_more


def test_seeds_of_a_group_train_on_the_cycles_fixed_when_its_first_seed_was_submitted(project, micro_data, tmp_path):
    first = create_run(project, micro_spec(epochs=1))
    queued = create_run(project, micro_spec(epochs=1, seed=2))  # queued before the import, trained after it
    run_training(project, first)
    added = _import_more(project, micro_data, tmp_path / "more")
    later = create_run(project, micro_spec(epochs=1, seed=3))  # submitted after it, to the same group
    for rid in (queued, later):
        run_training(project, rid)
        assert run_cycle_ids(project, rid) == run_cycle_ids(project, first)
    assert not set(added) & set(run_cycle_ids(project, first))
    assert len({get_run(project, r).data_fingerprint for r in (first, queued, later)}) == 1
    fresh = create_run(project, micro_spec(epochs=1, group="after-import"))  # a new group sees the new cycles
    run_training(project, fresh)
    assert set(added) <= set(run_cycle_ids(project, fresh))
    # A member cycle relabelled: the group's next seed is refused by name before any row is written.
    train, _ = training_cycles(project)
    member = next(r for r in train if r["id"] in set(run_cycle_ids(project, first)))
    project.update_cycle(member["id"], label=(member["label"] + 1) % 4, reason="test")
    count = project.db["runs"].count
    changed = rf"cycle set of group 'micro', fixed .*, changed since: cycle {member['id']} of .*: label .*--group NEW"
    with pytest.raises(TrainError, match=changed):
        create_run(project, micro_spec(epochs=1, seed=4))
    assert project.db["runs"].count == count


def test_failed_setups_leave_no_run_behind(project, micro_data, tmp_path):
    import pickle

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    other_arch = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, other_arch)
    refused = {
        "holds more than tensors": micro_spec(pretrained=str(evil)),
        "checkpoint does not fit": micro_spec(pretrained=str(other_arch)),
        "no such file": micro_spec(pretrained=str(tmp_path / "missing.pth")),
        "unknown setting": micro_spec(model_args={"widht": 3}),
        r"cannot be built with channels='abc'": micro_spec(model_args={"channels": "abc"}),
        r"seed 2147483648 is outside": micro_spec(seed=2**31),
    }
    for message, spec in refused.items():
        with pytest.raises(TrainError, match=message):
            create_run(project, spec)
    # A student whose teachers have no logits for cycles it would fit (imported after one trained).
    early = create_run(project, micro_spec(epochs=1, group="early"))
    run_training(project, early)
    _import_more(project, micro_data, tmp_path / "more")
    late = create_run(project, micro_spec(epochs=1, group="late"))
    run_training(project, late)
    with pytest.raises(TrainError, match=rf"teacher run {early} has no stored logits for"):
        create_run(project, micro_spec(targets={"kind": "soft", "teachers": [early, late], "mode": "mean"}))
    # No test split.
    for rec in project.recordings(split="test"):
        project.update_recording(rec["id"], {"split": "train"})
    with pytest.raises(TrainError, match="no test cycles"):
        create_run(project, micro_spec())
    assert [r.id for r in runs.list_runs(project)] == [early, late]
    assert project.db["cycle_sets"].count == 2


def test_a_student_group_takes_its_teachers_cycle_set(project, micro_data, tmp_path):
    teacher = create_run(project, micro_spec(epochs=1, group="teachers"))
    run_training(project, teacher)
    _import_more(project, micro_data, tmp_path / "more")
    student = create_run(project, micro_spec(epochs=1, targets={"kind": "soft", "teachers": [teacher], "mode": "mean"}))
    run_training(project, student)
    assert run_cycle_ids(project, student) == run_cycle_ids(project, teacher)


def test_audio_moved_after_submission_fails_the_run_with_the_files_named(project):
    rid = create_run(project, micro_spec(epochs=1))
    train, _ = training_cycles(project)
    moved = project.recording(train[0]["recording_id"])
    project.update_recording(moved["id"], {"path": "elsewhere/" + moved["name"] + ".wav"})
    with pytest.raises(TrainError, match=rf"run {rid} cannot read the audio .*{moved['name']} \(missing.*rsc check"):
        run_training(project, rid)
    assert get_run(project, rid).status == "failed"


def test_seed_requests_are_bounded():
    for bad, message in (("1-100000", "more than 1000 runs"), ("1-10000000000", "more than 1000 runs"),
                         ("2147483648", "outside 0..2147483647"), ("-1", "bad seeds")):
        with pytest.raises(ValueError, match=message):
            parse_seeds(bad)
    assert len(parse_seeds("1-1000")) == 1000


# -- every tiny model: one training step and a checkpoint round trip ------------------------------
TINY = ["cnn6-tiny", "resnet18-tiny", "efficientnet_b0-tiny", "ast-tiny", "audio_clap-tiny", "bts-tiny"]


@pytest.mark.parametrize("arch", TINY)
def test_tiny_model_trains_a_step_and_round_trips_its_checkpoint(arch, tmp_path):
    from trainer.features import FEATURE_SETS, spec_augment
    from trainer.models import create_model, example_inputs, list_models
    from trainer.train.checkpoint import load_weights, model_weights, save_weights

    if arch not in list_models():
        pytest.fail(f"{arch} is not registered")
    torch.manual_seed(0)
    model = create_model(arch)
    inputs = example_inputs(model, batch=2)
    inputs["x"] = torch.randn_like(inputs["x"])
    if model.feature_set != "clap":
        inputs["x"] = spec_augment(inputs["x"], generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss = torch.nn.functional.cross_entropy(model(**inputs), torch.tensor([0, 3]))
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    path = tmp_path / "m.safetensors"
    save_weights(model_weights(model), path, {"arch": arch})
    tensors, meta = load_weights(path)
    assert meta["arch"] == arch
    twin = create_model(arch)
    twin.load_state_dict(tensors)
    model.eval(), twin.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs), twin(**inputs), rtol=0, atol=0)
    assert FEATURE_SETS[model.feature_set].shape == tuple(inputs["x"].shape[1:])
