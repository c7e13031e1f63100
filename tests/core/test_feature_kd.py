"""Joint feature and output distillation (seed paper 004): presets, the projector, the task on two architectures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainer.distill import DistillError, TargetProvider, distillation_loss
from trainer.distill.presets import PRESETS, apply_preset
from trainer.models import create_model
from trainer.train.feature_kd import (
    FeatureKDTask, FeatureProjector, feature_layers, resolve_feature_settings, resolve_layer,
)
from trainer.train.spec import TrainError
from trainer.train.tasks import Batch

# Small inputs keep each step to milliseconds; the maps (and so the projector) follow the input size.
FRAMES, BINS, N = 64, 32, 8


@pytest.fixture(autouse=True)
def one_thread():
    """Tensors this small run fastest on one thread (two threads on two busy cores spend most of it waiting)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _batch(seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N, FRAMES, BINS, generator=gen)
    labels = torch.arange(N) % 4
    return Batch(x, None, labels, torch.arange(N))


def _provider(labels: torch.Tensor, temperature: float) -> TargetProvider:
    logits = np.random.default_rng(5).normal(size=(len(labels), 3, 4)) * 2.0  # three teachers' stored logits
    return TargetProvider(logits, labels.numpy(), "mean", seed=1, temperature=temperature)


def _models():
    torch.manual_seed(0)
    student = create_model("cnn6-tiny", channels=[2, 4, 8, 16])
    teacher = create_model("cpmobile-tiny")  # another architecture: inverted residuals, strided convolutions
    return student, teacher


def _task(student, teacher, batch, preset="cp-jku", teacher_layer="blocks.0", student_layer="conv_block2",
          weight=1.0) -> FeatureKDTask:
    targets = apply_preset({"preset": preset})
    task = FeatureKDTask(teacher, teacher_layer, student_layer, _provider(batch.labels, targets["temperature"]),
                         targets, weight, "cpu", example=batch.x)
    return task.attach(student)


# -- presets ----------------------------------------------------------------------------------------
def test_presets_resolve_to_the_published_weights():
    assert apply_preset({"preset": "efficientat"}) == {"preset": "efficientat", "hard_weight": 0.1, "temperature": 1.0}
    assert apply_preset({"preset": "cp-jku", "mode": "mean"}) == {
        "preset": "cp-jku", "mode": "mean", "hard_weight": 0.02, "temperature": 2.0}
    # A value equal to the preset's is no conflict; no preset leaves the settings as they were.
    assert apply_preset({"preset": "cp-jku", "temperature": 2})["temperature"] == 2.0
    assert apply_preset({"hard_weight": 0.3}) == {"hard_weight": 0.3}


def test_a_preset_with_a_conflicting_value_or_an_unknown_name_is_refused():
    with pytest.raises(DistillError, match=r"'cp-jku' sets temperature = 2.*temperature = 1\.5"):
        apply_preset({"preset": "cp-jku", "temperature": 1.5})
    with pytest.raises(DistillError, match="hard_weight"):
        apply_preset({"preset": "efficientat", "hard_weight": 0.0})
    with pytest.raises(DistillError, match="known: efficientat, cp-jku"):
        apply_preset({"preset": "cpjku"})


def test_the_cp_jku_loss_has_the_gradient_of_its_published_kl_form():
    # 0.02 x CE(labels) + 0.98 x T^2 x KL(teacher || student at T): our cross-entropy form differs only by
    # the teachers' entropy, a constant, so the student's gradient is the same.
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(6, 4, generator=gen, requires_grad=True)
    teacher = torch.randn(6, 4, generator=gen)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    hw, t = PRESETS["cp-jku"]["hard_weight"], PRESETS["cp-jku"]["temperature"]
    targets = F.softmax(teacher / t, dim=-1)
    ours = distillation_loss(logits, targets, labels, "mean", temperature=t, hard_weight=hw)
    (g_ours,) = torch.autograd.grad(ours, logits)
    kl = F.kl_div(F.log_softmax(logits / t, dim=-1), targets, reduction="batchmean")
    published = hw * F.cross_entropy(logits, labels) + (1 - hw) * t**2 * kl
    (g_published,) = torch.autograd.grad(published, logits)
    torch.testing.assert_close(g_ours, g_published)
    entropy = -(targets * targets.log()).sum(dim=-1).mean()
    torch.testing.assert_close(ours - published, (1 - hw) * t**2 * entropy)


# -- the projector ----------------------------------------------------------------------------------
def test_the_projector_maps_student_maps_onto_the_teachers_shape():
    x = torch.randn(3, 16, 50, 8)
    projector = FeatureProjector((16, 50, 8), (64, 25, 4), torch.Generator().manual_seed(0))
    assert projector(x).shape == (3, 64, 25, 4)
    # The fixed resize matrices are exactly a bilinear resize, also upwards and to odd sizes.
    for size in ((25, 4), (37, 13), (100, 16)):
        odd = FeatureProjector((16, 50, 8), (5, *size), torch.Generator().manual_seed(0))
        expected = F.interpolate(odd.proj(x), size=size, mode="bilinear", align_corners=False)
        torch.testing.assert_close(odd(x), expected, atol=1e-5, rtol=1e-5)
    # Token maps: a linear layer and a linear resize over tokens; a 4-D map meeting tokens becomes H x W tokens.
    tokens = FeatureProjector((950, 32), (100, 64))
    assert tokens(torch.randn(2, 950, 32)).shape == (2, 100, 64)
    mixed = FeatureProjector((16, 50, 8), (120, 48))
    assert mixed(x).shape == (3, 120, 48)
    reversed_ = FeatureProjector((120, 48), (16, 5, 8))
    assert reversed_.target(torch.randn(2, 16, 5, 8)).shape == (2, 40, 16)
    assert reversed_(torch.randn(2, 120, 48)).shape == (2, 40, 16)
    with pytest.raises(TrainError, match=r"shape \(16, 49, 8\).*built for \(16, 50, 8\)"):
        projector(torch.randn(1, 16, 49, 8))


# -- layers -----------------------------------------------------------------------------------------
def test_feature_layers_lists_the_maps_in_forward_order():
    student, _ = _models()
    layers = feature_layers(student, torch.zeros(1, FRAMES, BINS))
    assert layers == [f"conv_block{i}{part}" for i in range(1, 5) for part in (".conv1", ".bn1", "")]
    # The shared dropout (called once per block) and the head (2-D logits) are not candidates.
    name, shape = resolve_layer(student, "auto", "student", torch.zeros(1, FRAMES, BINS))
    assert (name, shape) == ("conv_block4", (16, 4, 2))


def test_bad_layer_names_are_refused_naming_the_candidates():
    student, teacher = _models()
    batch = _batch()
    with pytest.raises(TrainError, match=r"student cnn6-tiny has no layer 'conv_block9'; candidates: conv_block1\.conv1, "):
        _task(student, teacher, batch, student_layer="conv_block9")
    with pytest.raises(TrainError, match=r"teacher cpmobile-tiny has no layer 'stages\.0'; candidates: ") as refused:
        _task(student, teacher, batch, teacher_layer="stages.0")
    candidates = feature_layers(teacher, batch.x[:1])
    assert "blocks.0" in candidates and str(refused.value).endswith(", ".join(candidates))
    with pytest.raises(TrainError, match=r"'dropout' of cnn6-tiny is called 5 times.*candidates: conv_block1\.conv1"):
        _task(student, teacher, batch, student_layer="dropout")
    with pytest.raises(TrainError, match=r"'head' of cnn6-tiny gives no 3-D or 4-D feature map"):
        _task(student, teacher, batch, student_layer="head")


# -- the task ---------------------------------------------------------------------------------------
def test_a_few_steps_make_the_feature_loss_and_the_total_loss_fall_across_architectures():
    student, teacher = _models()
    batch = _batch()
    seen = []
    handle = teacher.blocks[0].register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape[1:])))
    with torch.no_grad():
        teacher.eval()(batch.x[:1])
    handle.remove()
    task = _task(student, teacher, batch)
    # cnn6-tiny halves time and frequency per block: 64 x 32 -> 16 x 8 with 4 channels after block 2.
    assert task.projector.student_shape == (4, 16, 8) and task.projector.teacher_shape == seen[0]
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    head_calls = []
    teacher.head.register_forward_hook(lambda *args: head_calls.append(1))
    optimizer = torch.optim.Adam(list(student.parameters()) + task.parameters(), lr=3e-3)
    task.start_epoch(0)
    student.train()
    totals, features = [], []
    for _ in range(15):
        loss, logits = task.forward(student, batch)
        assert logits.shape == (N, 4)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        totals.append(float(loss.detach()))
        features.append(float(task.last_losses["feature"]))
        torch.testing.assert_close(loss.detach(), task.last_losses["output"] + task.last_losses["feature"])
    assert features[-1] < 0.8 * features[0], features
    assert totals[-1] < totals[0], totals
    # The teacher is frozen, stays in eval mode (its batch-norm statistics unchanged) and stops at its layer.
    assert all(torch.equal(v, teacher_before[k]) for k, v in teacher.state_dict().items())
    assert not teacher.training and all(p.grad is None for p in teacher.parameters())
    assert head_calls == []


def test_the_output_term_is_the_soft_label_loss_and_the_feature_weight_scales_the_mse():
    student, teacher = _models()
    batch = _batch()
    task = _task(student, teacher, batch, preset="efficientat", weight=0.0)
    task.start_epoch(0)
    loss, logits = task.forward(student, batch)
    expected = distillation_loss(logits, task.output.epoch_targets[batch.positions], batch.labels, "mean",
                                 temperature=1.0, hard_weight=0.1)
    torch.testing.assert_close(loss, expected)
    task.feature_weight = 2.5
    loss, _ = task.forward(student, batch)
    torch.testing.assert_close(loss, task.last_losses["output"] + 2.5 * task.last_losses["feature"])
    assert float(task.last_losses["feature"]) > 0


def test_the_projector_state_round_trips_and_a_mismatched_one_is_refused():
    student, teacher = _models()
    batch = _batch()
    task = _task(student, teacher, batch)
    with torch.no_grad():
        for p in task.parameters():
            p.add_(0.25)  # as if trained
    state = task.state_dict()
    again = FeatureKDTask(teacher, "blocks.0", "conv_block2", task.provider, {"temperature": 2.0, "hard_weight": 0.02},
                          1.0, "cpu", seed=7, example=batch.x).attach(student)
    probe = torch.randn(2, 4, 16, 8)
    assert not torch.equal(again.projector(probe), task.projector(probe))
    again.load_state_dict(state)
    torch.testing.assert_close(again.projector(probe), task.projector(probe), rtol=0, atol=0)
    other = _task(student, teacher, batch, student_layer="conv_block3")
    with pytest.raises(TrainError, match="does not fit conv_block3 -> blocks.0"):
        other.load_state_dict(state)


def test_feature_settings_fill_defaults_and_refuse_what_cannot_train():
    assert resolve_feature_settings({}, ["t1", "t2"]) == {
        "teacher": "t1", "teacher_layer": "auto", "student_layer": "auto", "weight": 1.0}
    assert resolve_feature_settings({"teacher": "t2", "weight": "0.5", "student_layer": "blocks.1"}, ["t1", "t2"])[
        "weight"] == 0.5
    with pytest.raises(TrainError, match="'t3' is not one of the student's teachers"):
        resolve_feature_settings({"teacher": "t3"}, ["t1", "t2"])
    with pytest.raises(TrainError, match="weight must be a number >= 0"):
        resolve_feature_settings({"weight": -1}, ["t1"])
    with pytest.raises(TrainError, match="unknown feature distillation setting"):
        resolve_feature_settings({"layer": "x"}, ["t1"])
