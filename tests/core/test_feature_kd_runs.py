"""Feature + output KD through the runner (needs the integration patch in spec.py, runner.py, checkpoint.py)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import copy_project
from trainer import runs
from trainer.project import Project
from trainer.train import RunStopped, TrainError, TrainSpec, create_run, resume, run_training


def micro(**changes) -> TrainSpec:
    settings = dict(arch="cnn6-tiny", seed=1, group="micro", epochs=2, batch_size=8, lr=3e-3, device="cpu",
                    model_args={"channels": [2, 4, 8, 16]})
    settings.update(changes)
    return TrainSpec(**settings)


@pytest.fixture
def project(tmp_path, micro_base):
    with Project.open(copy_project(micro_base, tmp_path / "p.rsc")) as opened:
        yield opened


def test_a_feature_kd_student_resumed_mid_run_ends_as_one_trained_straight_through(project):
    teacher = create_run(project, micro(epochs=1, group="teachers", model_args={"channels": [4, 8, 16, 32]}))
    run_training(project, teacher)
    targets = {"kind": "soft", "teachers": [teacher], "mode": "mean", "preset": "cp-jku",
               "feature": {"teacher_layer": "conv_block2", "student_layer": "conv_block3", "weight": 0.5}}
    straight = create_run(project, micro(group="students", targets=targets))
    stored = runs.get_run(project, straight).spec["targets"]
    assert stored["temperature"] == 2.0 and stored["hard_weight"] == 0.02 and stored["preset"] == "cp-jku"
    assert stored["feature"] == {"teacher": teacher, "teacher_layer": "conv_block2", "student_layer": "conv_block3",
                                 "weight": 0.5}
    expected = run_training(project, straight)
    stopped = create_run(project, micro(group="students", targets=targets))
    with pytest.raises(RunStopped):
        run_training(project, stopped, should_stop=lambda: len(runs.run_epochs(project, stopped)) >= 1)
    assert resume(project, stopped) == expected
    # each epoch keeps its two terms, which make its loss, and the resumed run logged the same ones
    epochs = runs.run_epochs(project, straight)
    for entry in epochs:
        parts = entry["loss_parts"]
        assert set(parts) == {"output", "feature"} and parts["feature"] > 0
        assert parts["output"] + 0.5 * parts["feature"] == pytest.approx(entry["loss"], rel=1e-5)
    assert [e["loss_parts"] for e in runs.run_epochs(project, stopped)] == [e["loss_parts"] for e in epochs]
    ids = runs.run_cycle_ids(project, straight)
    np.testing.assert_array_equal(runs.load_logits(project, [stopped], ids), runs.load_logits(project, [straight], ids))


def test_feature_kd_settings_that_cannot_train_leave_no_run_behind(project):
    teacher = create_run(project, micro(epochs=1, group="teachers"))
    run_training(project, teacher)
    before = len(runs.list_runs(project))
    base = {"kind": "soft", "teachers": [teacher], "mode": "mean"}
    with pytest.raises(TrainError, match="'cp-jku' sets temperature = 2"):
        create_run(project, micro(group="students", targets={**base, "preset": "cp-jku", "temperature": 1.0}))
    with pytest.raises(TrainError, match=r"student cnn6-tiny has no layer 'conv_block7'; candidates: conv_block1\.conv1"):
        create_run(project, micro(group="students", targets={**base, "feature": {"student_layer": "conv_block7"}}))
    with pytest.raises(TrainError, match="not one of the student's teachers"):
        create_run(project, micro(group="students", targets={**base, "feature": {"teacher": "elsewhere"}}))
    assert len(runs.list_runs(project)) == before


def test_rsc_distill_with_a_preset_and_feature_maps_stores_the_published_weights_and_a_named_group(project, capsys):
    from trainer.cli import main

    teacher = create_run(project, micro(epochs=1, group="teachers"))
    run_training(project, teacher)
    args = [str(project.path), "--arch", "cnn6-tiny", "--model-arg", "channels=2,4,8,16", "--epochs", "1",
            "--batch-size", "8", "--device", "cpu", "--quiet", "--teachers", "teachers"]
    assert main(["distill", *args, "--preset", "efficientat", "--feature-weight", "0.5",
                 "--student-layer", "conv_block3"]) == 0
    (run,) = runs.list_runs(project, group="cnn6-tiny-mean-efficientat-fkd-k1-from-teachers")
    targets = run.spec["targets"]
    assert run.status == "done" and targets["preset"] == "efficientat"
    assert targets["hard_weight"] == 0.1 and targets["temperature"] == 1.0
    assert targets["feature"]["weight"] == 0.5 and targets["feature"]["student_layer"] == "conv_block3"
    # An explicit value that contradicts the preset is refused, as are layers without feature distillation.
    assert main(["distill", *args, "--preset", "cp-jku", "--temperature", "3"]) == 2
    assert "'cp-jku' sets temperature = 2" in capsys.readouterr().err
    assert main(["distill", *args, "--student-layer", "conv_block3"]) == 2
    assert "need --feature-weight" in capsys.readouterr().err
