"""Consistent ensemble distillation: seeded views, stored teacher passes, and their exact replay."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import copy_project
from trainer.distill import DistillError
from trainer.distill.ced import ViewRecipe, load_passes, make_views, view_digest, view_seed
from trainer.features import load_features
from trainer.project import Project
from trainer.train import TrainSpec, create_run, run_training, training_cycles
from trainer.train.ced_task import CedTask
from trainer.train.logit_passes import run_passes
from trainer.train.spec import TrainError

MICRO = {"channels": [2, 4, 8, 16]}


@pytest.fixture(scope="module")
def taught(tmp_path_factory, micro_base):
    """A copy of the micro project with two one-epoch micro teachers in group "teachers"."""
    path = copy_project(micro_base, tmp_path_factory.mktemp("ced") / "p.rsc")
    torch.set_num_threads(1)
    with Project.open(path) as project:
        for seed in (1, 2):
            rid = create_run(project, TrainSpec(arch="cnn6-tiny", seed=seed, group="teachers", epochs=1, batch_size=8,
                                                device="cpu", model_args=MICRO))
            run_training(project, rid)
    return path


def test_a_view_depends_on_its_seed_alone_never_on_its_batch():
    x = torch.randn(3, 800, 128)
    recipe = ViewRecipe()
    together = make_views(x, [11, 12, 13], recipe)
    alone = make_views(x[1:2], [12], recipe)
    assert torch.equal(together[1], alone[0])
    assert not torch.equal(make_views(x[1:2], [14], recipe)[0], alone[0])
    assert not torch.equal(alone[0], x[1])  # the view changed something


def test_view_seeds_differ_across_cycles_and_views_and_repeat_for_the_same_ones():
    seeds = {view_seed(0, cycle, view) for cycle in range(200) for view in range(4)}
    assert len(seeds) == 800
    assert view_seed(0, 7, 2) == view_seed(0, 7, 2) != view_seed(1, 7, 2)
    assert all(0 <= s < 2**62 for s in seeds)


def test_gain_moves_fixed_statistics_inputs_and_leaves_per_sample_normalised_ones():
    x = torch.zeros(1, 800, 128)
    recipe = ViewRecipe(freq_masks=0, time_masks=0, max_shift=0, gain_db=6.0)
    assert torch.equal(make_views(x, [5], recipe, "per_sample"), x)
    shifted = make_views(x, [5], recipe, "ast")
    assert shifted.unique().numel() == 1 and shifted.abs().max() > 0


def test_teacher_passes_are_stored_and_a_replayed_view_is_bit_identical_to_what_the_teachers_saw(taught):
    with Project.open(taught) as project:
        passes, figures = run_passes(project, "teachers", passes=3)
        train, _ = training_cycles(project)
        x = load_features(project, "cnn", train)
    stored = load_passes(figures["path"])
    assert stored.passes == 3 and len(stored.cycle_ids) == len(train)
    assert stored.meta["teachers"] == passes.meta["teachers"] and len(stored.meta["teachers"]) == 2
    assert stored.top_value.dtype == np.float16 and stored.top_index.shape[2] == 4
    assert figures["bytes_per_view"] * 100 < figures["feature_bytes_per_cycle"]
    # Replay: the task makes each stored view again from its seed; its bytes hash to the stored digest.
    fit_ids = [int(c["id"]) for c in train]
    task = CedTask(stored, fit_ids, {"temperature": 1.0, "hard_weight": 0.0}, seed=1, device=torch.device("cpu"))
    task.start_epoch(0)
    positions = np.arange(len(fit_ids))
    replayed, rows, views = task.replay(torch.as_tensor(x), positions)
    for j in range(len(fit_ids)):
        assert view_digest(replayed[j]) == int(stored.digests[rows[j], views[j]])
    # The teachers' logits on that replay are the stored ones (to fp16).
    from trainer.train import load_run_model

    with Project.open(taught) as project:
        models = [load_run_model(project, rid) for rid in stored.meta["teachers"]]
    with torch.inference_mode():
        mean = sum(m(replayed) for m in models) / len(models)
    order = np.argsort(-mean.numpy(), axis=1)
    stored_values = stored.top_value[rows, views].astype(np.float32)
    assert np.array_equal(stored.top_index[rows, views], order.astype(np.uint8))
    np.testing.assert_allclose(stored_values, np.take_along_axis(mean.numpy(), order, axis=1), atol=2e-3, rtol=1e-3)
    targets = stored.soft_targets(rows, views)
    np.testing.assert_allclose(targets.sum(dim=1).numpy(), 1.0, atol=1e-6)


def test_a_replay_of_other_inputs_is_refused_instead_of_trained_on(taught):
    with Project.open(taught) as project:
        _, figures = run_passes(project, "teachers", passes=2, base_seed=9)
        train, _ = training_cycles(project)
    stored = load_passes(figures["path"])
    task = CedTask(stored, [int(c["id"]) for c in train], {"temperature": 1.0, "hard_weight": 0.0}, 1, torch.device("cpu"))
    task.start_epoch(0)
    other = torch.randn(2, 800, 128)
    with pytest.raises(TrainError, match="differs from the one the teachers saw"):
        task.replay(other, np.arange(2))


def test_changed_passes_files_and_unknown_cycles_are_refused(taught, tmp_path):
    with Project.open(taught) as project:
        _, figures = run_passes(project, "teachers", passes=1, base_seed=3)
    stored = load_passes(figures["path"])
    with pytest.raises(TrainError, match="have no stored teacher views"):
        CedTask(stored, [10**9], {"temperature": 1.0, "hard_weight": 0.0}, 1, torch.device("cpu"))
    path = figures["path"]
    data = bytearray(open(path, "rb").read())
    data[-40] ^= 0xFF
    open(path, "wb").write(bytes(data))
    with pytest.raises(DistillError, match="does not match its sidecar"):
        load_passes(path)
    sidecar = path[: -len(".npz")] + ".json"
    meta = json.loads(open(sidecar).read())
    open(sidecar, "w").write(json.dumps(dict(meta, format="other")))
    with pytest.raises(DistillError, match="not a passes sidecar"):
        load_passes(path)


def test_passes_of_a_group_without_finished_runs_are_refused(taught):
    with Project.open(taught) as project:
        with pytest.raises(TrainError, match="no finished run"):
            run_passes(project, "nobody", passes=2)
        with pytest.raises(TrainError, match="--passes must be at least 1"):
            run_passes(project, "teachers", passes=0)


def test_the_command_line_offers_every_distillation_mode():
    from trainer.cli.train import DISTILL_MODES
    from trainer.distill import MODES

    assert DISTILL_MODES == tuple(m for m in MODES if m != "hard")


def test_rsc_logits_then_a_label_free_ced_student_from_the_command_line(taught, tmp_path, capsys):
    from trainer import runs
    from trainer.cli import main

    path = copy_project(taught, tmp_path / "p.rsc")
    assert main(["logits", str(path), "--teachers", "teachers", "--passes", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "views of" in out and "bytes (seed, digest, top-k logits in fp16)" in out
    args = ["--arch", "cnn6-tiny", "--model-arg", "channels=2,4,8,16", "--epochs", "1", "--batch-size", "8",
            "--device", "cpu", "--quiet"]
    assert main(["distill", str(path), *args, "--teachers", "teachers", "--mode", "ced", "--passes", "2",
                 "--group", "ced-students"]) == 0
    with Project.open(path) as project:
        (run,) = runs.list_runs(project, group="ced-students")
        teachers = sorted(r.id for r in runs.list_runs(project, group="teachers"))
    assert run.status == "done" and run.kind == "student"
    targets = run.spec["targets"]
    assert targets["mode"] == "ced" and targets["passes"] == "teachers-x2-s0" and targets["hard_weight"] == 0.0
    assert sorted(targets["teachers"]) == teachers and run.spec["spec_augment"] is False
    assert main(["report", str(path)]) == 0  # named beside the other methods, with its size
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| ced-students |"))
    assert "student ced k=2, views of teachers-x2-s0" in row and "| 0.0" in row
    # Views that were never made are made by the student, from the teachers named in its spec.
    assert main(["distill", str(path), *args, "--teachers", "teachers", "--mode", "ced", "--passes", "3",
                 "--group", "ced-made"]) == 0
    with Project.open(path) as project:
        (made,) = runs.list_runs(project, group="ced-made")
        assert made.status == "done" and made.spec["targets"]["views"] == {"count": 3, "seed": 0}
        stored = load_passes(project.artifacts / "logit-passes" / "teachers-x3-s0.npz")
    assert stored.passes == 3 and sorted(stored.meta["teachers"]) == teachers
    # A second augmentation on top of the teachers' views is refused.
    assert main(["distill", str(path), *args, "--teachers", "teachers", "--mode", "ced", "--passes", "2",
                 "--spec-augment"]) == 2
    assert "leave SpecAugment off" in capsys.readouterr().err


def test_views_a_student_makes_are_the_views_rsc_logits_makes(taught, tmp_path):
    from trainer import runs
    from trainer.jobs.specs import DistillChoices, TrainChoices, student_jobs, view_status

    by_hand, by_student = (copy_project(taught, tmp_path / f"{name}.rsc") for name in ("hand", "student"))
    with Project.open(by_hand) as project:
        expected, _ = run_passes(project, "teachers", passes=2, base_seed=7)
    with Project.open(by_student) as project:
        distill = DistillChoices(teachers="teachers", mode="ced", passes=2, view_seed=7)
        assert view_status(project, distill).startswith("Not made yet: the first student runs the 2 teachers over ")
        jobs = student_jobs(project, TrainChoices(arch="cnn6-tiny", epochs=1, batch_size=8, device="cpu",
                                                  model_args=["channels=2,4,8,16"]), distill)
        run_id = create_run(project, jobs.specs[0])
        events = []
        run_training(project, run_id, progress=events.append)
        views = [e for e in events if e["phase"] == "views"]
        assert views and views[-1]["done"] == views[-1]["total"] == len(expected.cycle_ids) * 2
        assert runs.get_run(project, run_id).status == "done"
        assert view_status(project, distill).startswith("Stored: 2 views of ")
        made = load_passes(project.artifacts / "logit-passes" / "teachers-x2-s7.npz")
    for name in ("cycle_ids", "seeds", "digests", "top_index", "top_value"):
        assert np.array_equal(getattr(made, name), getattr(expected, name)), name
