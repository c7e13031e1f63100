"""Fidelity to the published code: AST's position-embedding rule, and undefined Se in selection and curation."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from trainer.models import ModelError, create_model
from trainer.models.ast import (
    AST_TINY,
    crop_position_embeddings,
    interpolate_position_embeddings,
    new_run_model_args,
    stored_run_model_args,
)


def published_pos_embed(pos: torch.Tensor, f0: int, t0: int, f_dim: int, t_dim: int) -> torch.Tensor:
    """Transcribed from YuanGongND/ast src/models/ast_models.py (the AudioSet branch), with 12 and 101
    written as f0 and t0 and 6 and 50 as their halves; CLS and distillation tokens stay in front."""
    dim = pos.shape[2]
    new_pos_embed = pos[:, 2:, :].detach().reshape(1, f0 * t0, dim).transpose(1, 2).reshape(1, dim, f0, t0)
    if t_dim < t0:
        new_pos_embed = new_pos_embed[:, :, :, int(t0 / 2) - int(t_dim / 2): int(t0 / 2) - int(t_dim / 2) + t_dim]
    else:
        new_pos_embed = torch.nn.functional.interpolate(new_pos_embed, size=(f0, t_dim), mode='bilinear')
    if f_dim < f0:
        new_pos_embed = new_pos_embed[:, :, int(f0 / 2) - int(f_dim / 2): int(f0 / 2) - int(f_dim / 2) + f_dim, :]
    elif f_dim > f0:
        new_pos_embed = torch.nn.functional.interpolate(new_pos_embed, size=(f_dim, t_dim), mode='bilinear')
    new_pos_embed = new_pos_embed.reshape(1, dim, f_dim * t_dim).transpose(1, 2)
    return torch.cat([pos[:, :2, :].detach(), new_pos_embed], dim=1)


@pytest.fixture(scope="module")
def audioset_shaped(tmp_path_factory):
    """A tiny AST checkpoint on the AudioSet grid (1024 frames: 12 x 101 patches) with random positions."""
    import transformers as tf

    torch.manual_seed(0)
    source = tf.ASTForAudioClassification(tf.ASTConfig(**dict(AST_TINY, max_length=1024), num_labels=527))
    pos = torch.randn_like(source.audio_spectrogram_transformer.embeddings.position_embeddings)
    with torch.no_grad():
        source.audio_spectrogram_transformer.embeddings.position_embeddings.copy_(pos)
    folder = tmp_path_factory.mktemp("ast1024") / "ckpt"
    source.save_pretrained(folder)
    return folder, pos


def test_an_8_s_ast_takes_time_columns_11_to_89_of_the_audioset_grid_as_the_published_code_does(audioset_shaped):
    folder, pos = audioset_shaped
    model = create_model("ast-tiny", pretrained=str(folder))
    ours = model.backbone.embeddings.position_embeddings.detach()
    assert ours.shape == (1, 2 + 12 * 79, AST_TINY["hidden_size"])
    assert torch.equal(ours, published_pos_embed(pos, 12, 101, 12, 79))
    grid = pos[:, 2:].reshape(1, 12, 101, -1)
    assert torch.equal(ours[:, 2:].reshape(1, 12, 79, -1), grid[:, :, 11:90])
    assert torch.equal(ours[:, :2], pos[:, :2])
    assert "centre-cropped" in model.pretrained_report.adapted["backbone.embeddings.position_embeddings"]


@pytest.mark.parametrize("source_grid, target_grid", [
    ((12, 101), (12, 79)), ((12, 101), (12, 100)), ((12, 101), (12, 130)), ((12, 101), (9, 60)),
    ((12, 101), (16, 79)), ((12, 101), (15, 140)), ((7, 10), (4, 3)), ((6, 8), (6, 8)),
])
def test_the_crop_rule_equals_the_transcribed_published_rule_on_random_grids(source_grid, target_grid):
    (f0, t0), (f1, t1) = source_grid, target_grid
    pos = torch.randn(1, 2 + f0 * t0, 5, generator=torch.Generator().manual_seed(f0 * 1000 + t1))
    ours = crop_position_embeddings(pos, source_grid, target_grid)
    assert torch.allclose(ours, published_pos_embed(pos, f0, t0, f1, t1), atol=1e-6)


def test_resampling_stays_an_option_and_differs_from_the_crop(audioset_shaped):
    folder, pos = audioset_shaped
    model = create_model("ast-tiny", pretrained=str(folder), pos_embed="resample")
    ours = model.backbone.embeddings.position_embeddings.detach()
    assert torch.equal(ours, interpolate_position_embeddings(pos, (12, 101), (12, 79)))
    assert not torch.allclose(ours, published_pos_embed(pos, 12, 101, 12, 79))
    assert model.spec["pos_embed"] == "resample"
    with pytest.raises(ModelError, match="unknown pos_embed 'stretch'.*crop, resample"):
        create_model("ast-tiny", pos_embed="stretch")


def test_a_new_run_records_the_crop_and_a_run_stored_without_the_key_means_resample():
    assert new_run_model_args("ast", {}) == {"pos_embed": "crop"}
    assert new_run_model_args("ast-tiny", {"max_length": 1024}) == {"pos_embed": "crop", "max_length": 1024}
    assert stored_run_model_args("ast", {}) == {"pos_embed": "resample"}
    # What a run wrote down wins both ways, and other architectures have no such setting.
    assert stored_run_model_args("ast", {"pos_embed": "crop"}) == {"pos_embed": "crop"}
    assert new_run_model_args("ast", {"pos_embed": "resample"}) == {"pos_embed": "resample"}
    for made in (new_run_model_args, stored_run_model_args):
        assert made("cnn6", {"dropout": 0.2}) == {"dropout": 0.2}


def test_train_specs_record_pos_embed_and_stored_ast_specs_without_it_rebuild_the_resampled_model(audioset_shaped):
    """Needs TrainSpec.resolved() to call new_run_model_args and TrainSpec.from_dict() stored_run_model_args."""
    from trainer.train import TrainSpec

    new = TrainSpec(arch="ast-tiny", device="cpu").resolved()
    assert new.model_args == {"pos_embed": "crop"}
    stored = new.to_dict()
    stored["model_args"] = {}  # a run made before pos_embed existed
    old = TrainSpec.from_dict(stored)
    assert old.model_args == {"pos_embed": "resample"}
    assert old.resolved().model_args == {"pos_embed": "resample"}
    assert TrainSpec.from_dict(new.to_dict()).model_args == {"pos_embed": "crop"}
    folder, pos = audioset_shaped
    rebuilt = create_model("ast-tiny", pretrained=str(folder), **old.model_args)
    assert torch.equal(rebuilt.backbone.embeddings.position_embeddings.detach(),
                       interpolate_position_embeddings(pos, (12, 101), (12, 79)))
    assert TrainSpec(arch="cnn6-tiny", device="cpu").resolved().model_args == {}


# -- undefined Se (NaN) where the published code gives 0 ------------------------------------------------
def test_checkpoint_selection_never_prefers_an_epoch_whose_score_is_undefined():
    from trainer.train.checkpoint import LoopState
    from trainer.train.loop import FitLoop

    nan = {"score": math.nan}
    for select, scores in (("val", [math.nan, 61.0, math.nan, 58.0, 64.0, math.nan]),
                           ("test", [math.nan, math.nan, 40.0, math.nan])):
        loop = SimpleNamespace(spec=SimpleNamespace(select=select), state=LoopState())
        picked = []
        for epoch, value in enumerate(scores, start=1):
            loop.state.epoch = epoch
            split = {"score": value}
            picked.append(FitLoop.select(loop, split if select == "test" else nan, split if select == "val" else nan))
        finite = [v for v in scores if not math.isnan(v)]
        best = scores.index(max(finite)) + 1
        assert loop.state.best_epoch == best and loop.state.best_score == max(finite), select
        assert not any(picked[i] for i, v in enumerate(scores) if math.isnan(v) and i > 0), select
    # No epoch with a defined score: the first stands (there is nothing to choose by).
    loop = SimpleNamespace(spec=SimpleNamespace(select="val"), state=LoopState())
    for epoch in (1, 2, 3):
        loop.state.epoch = epoch
        FitLoop.select(loop, nan, nan)
    assert loop.state.best_epoch == 1 and loop.state.best_score == -math.inf


@pytest.fixture
def teacher_group(tmp_path):
    from trainer import runs
    from trainer.project import Project

    project = Project.create(tmp_path / "curated.rsc")
    scored = {"t1": (1, 60.0, None), "t2": (2, math.nan, None), "t3": (3, 70.0, None),
              "t4": (4, 55.0, math.nan), "t5": (5, 65.0, 62.0)}
    for run_id, (seed, score, val) in scored.items():
        metrics = {"sp": 80.0, "se": math.nan if math.isnan(score) else 40.0, "score": score, "selection": "last"}
        if val is not None:
            metrics.update(selection="val", val={"score": val})
        runs.insert_run(project, run_id, group="teachers", kind="teacher", arch="cnn6", seed=seed,
                        spec={"arch": "cnn6", "seed": seed, "group": "teachers"})
        runs.finish(project, run_id, metrics=metrics, checkpoint=None, epoch=1)
    yield project
    project.close()


def test_curated_teachers_rank_defined_scores_and_never_take_an_undefined_one_as_best(teacher_group):
    from trainer.distill import DistillError
    from trainer.distill.teachers import select_teachers

    # t5 ranks by its validation score (62), t4 by an undefined one, t2 by an undefined test score.
    assert select_teachers(teacher_group, "teachers", 3, "curated") == ["t3", "t5", "t1"]
    with pytest.raises(DistillError, match=r"4 best runs but only 3 have a defined score \(t2, t4: undefined"):
        select_teachers(teacher_group, "teachers", 4, "curated")
    assert select_teachers(teacher_group, "teachers", 4, "first") == ["t1", "t2", "t3", "t4"]


def _rows(labels_by_patient: dict[str, list[int]]) -> list[dict]:
    return [{"patient_id": patient, "recording_id": i, "label": label, "id": 100 * i + j}
            for i, (patient, labels) in enumerate(labels_by_patient.items()) for j, label in enumerate(labels)]


def test_a_validation_split_without_abnormal_or_normal_cycles_is_refused_with_its_sizes_and_a_remedy():
    from trainer.train import TrainError, patient_disjoint_split

    all_normal = _rows({f"p{i}": [0, 0, 0, 0] for i in range(10)})
    with pytest.raises(TrainError) as caught:
        patient_disjoint_split(all_normal, 0.2, 0, owner="run ast-hard seed 3")
    message = str(caught.value)
    assert message.startswith("run ast-hard seed 3: its validation split (8 cycles of 2 patients: 8 normal, 0 abnormal; "
                              "32 cycles left to fit) has no abnormal")
    assert "raise val_fraction (now 0.2)" in message and "select=last" in message and "Se and Score" in message
    all_abnormal = _rows({f"p{i}": [1, 2, 3] for i in range(6)})
    with pytest.raises(TrainError, match=r"0 normal, \d+ abnormal.*has no normal cycles, so its Sp and Score"):
        patient_disjoint_split(all_abnormal, 0.3, 0)
    mixed = _rows({f"p{i}": [0, 1, 0, 2] for i in range(10)})
    fit, val = patient_disjoint_split(mixed, 0.2, 0)
    assert len(fit) + len(val) == len(mixed) and {mixed[i]["label"] for i in val} == {0, 1, 2}


def test_a_run_asking_for_select_val_on_a_split_that_cannot_score_is_refused_before_its_row_is_written(
        tmp_path, micro_base):
    from conftest import copy_project

    from trainer import runs
    from trainer.project import Project
    from trainer.train import TrainError, TrainSpec, create_run

    with Project.open(copy_project(micro_base, tmp_path / "p.rsc")) as project:
        for cycle in project.cycles(split="train"):
            project.update_cycle(cycle["id"], label=0)
        spec = TrainSpec(arch="cnn6-tiny", seed=2, group="all-normal", epochs=1, device="cpu", select="val",
                         model_args={"channels": [2, 4, 8, 16]})
        with pytest.raises(TrainError, match=r"p\.rsc: run all-normal seed 2: its validation split .* has no abnormal"):
            create_run(project, spec)
        assert runs.list_runs(project) == []
