"""Soft-label targets, the distillation loss, teacher selection and the batched multi-model step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainer import runs
from trainer.distill import DistillError, TargetProvider, distillation_loss, select_teachers
from trainer.project import Project

E = math.e

# Two cycles, two teachers, four classes; the targets below are worked out by hand.
LOGITS = np.array(
    [
        [[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]],  # mean [1, 1, 0, 0]
        [[0.0, 0.0, 0.0, 0.0], [4.0, 0.0, 0.0, 0.0]],  # mean [2, 0, 0, 0]
    ]
)
LABELS = np.array([1, 0])


def test_mean_teacher_targets_by_hand():
    provider = TargetProvider(LOGITS, LABELS, "mean", seed=1)
    expected = np.array(
        [
            [E / (2 * E + 2), E / (2 * E + 2), 1 / (2 * E + 2), 1 / (2 * E + 2)],
            [E**2 / (E**2 + 3), 1 / (E**2 + 3), 1 / (E**2 + 3), 1 / (E**2 + 3)],
        ]
    )
    assert provider.soft
    np.testing.assert_allclose(provider.targets(0).numpy(), expected, rtol=1e-6)
    # Fixed across epochs.
    np.testing.assert_array_equal(provider.targets(0).numpy(), provider.targets(7).numpy())


def test_temperature_divides_mean_logits():
    provider = TargetProvider(LOGITS, LABELS, "mean", seed=1, temperature=2.0)
    e = math.exp(0.5)  # mean [1,1,0,0] / 2
    np.testing.assert_allclose(
        provider.targets(0).numpy()[0], [e / (2 * e + 2), e / (2 * e + 2), 1 / (2 * e + 2), 1 / (2 * e + 2)], rtol=1e-6
    )
    # mean [2, 0, 0, 0] / 2 -> [1, 0, 0, 0]
    np.testing.assert_allclose(provider.targets(0).numpy()[1], [E / (E + 3), 1 / (E + 3), 1 / (E + 3), 1 / (E + 3)], rtol=1e-6)


def test_curated_is_mean_of_given_teachers_and_single_takes_one():
    curated = TargetProvider(LOGITS, LABELS, "curated", seed=0).targets(0).numpy()
    mean = TargetProvider(LOGITS, LABELS, "mean", seed=0).targets(0).numpy()
    np.testing.assert_array_equal(curated, mean)
    single = TargetProvider(LOGITS[:, 1:], LABELS, "single", seed=0).targets(0).numpy()
    np.testing.assert_allclose(single[0], [1 / (E**2 + 3), E**2 / (E**2 + 3), 1 / (E**2 + 3), 1 / (E**2 + 3)], rtol=1e-6)
    np.testing.assert_allclose(single[1], [E**4 / (E**4 + 3), 1 / (E**4 + 3), 1 / (E**4 + 3), 1 / (E**4 + 3)], rtol=1e-6)
    with pytest.raises(DistillError, match="exactly one teacher"):
        TargetProvider(LOGITS, LABELS, "single", seed=0)


def test_hard_mode_is_one_hot_and_not_soft():
    provider = TargetProvider(None, LABELS, "hard", seed=0)
    assert not provider.soft
    np.testing.assert_array_equal(provider.targets(0).numpy(), [[0, 1, 0, 0], [1, 0, 0, 0]])


def test_random_teacher_picks_actual_teachers_redraws_per_epoch_and_is_deterministic():
    rng = np.random.default_rng(5)
    n, k = 600, 3
    logits = rng.normal(size=(n, k, 4)) * 3
    labels = rng.integers(0, 4, n)
    provider = TargetProvider(logits, labels, "random", seed=11)
    per_teacher = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)  # independent softmax
    t0, t1 = provider.targets(0).numpy(), provider.targets(1).numpy()

    # Each row is exactly one teacher's distribution: find which by nearest match.
    dist0 = np.abs(per_teacher - t0[:, None, :]).max(-1)  # (n, k)
    assert (dist0.min(axis=1) < 1e-6).all()
    chosen0 = dist0.argmin(axis=1)
    np.testing.assert_array_equal(chosen0, provider.teacher_choice(0))
    # Roughly uniform: each teacher about n/k times (binomial sd ~ 11.5; allow ~5 sd).
    counts = np.bincount(chosen0, minlength=k)
    assert (np.abs(counts - n / k) < 60).all(), counts

    # Redrawn each epoch: a different assignment for a good share of cycles (expected 2/3).
    chosen1 = np.abs(per_teacher - t1[:, None, :]).max(-1).argmin(axis=1)
    assert 0.5 < (chosen0 != chosen1).mean() < 0.8

    # Deterministic per (seed, epoch): a second provider (e.g. after resume) gives identical targets.
    again = TargetProvider(logits, labels, "random", seed=11)
    np.testing.assert_array_equal(again.targets(1).numpy(), t1)
    np.testing.assert_array_equal(again.targets(0).numpy(), t0)
    other_seed = TargetProvider(logits, labels, "random", seed=12)
    assert not np.array_equal(other_seed.targets(0).numpy(), t0)


def test_noise_const_is_one_hot_plus_variance_01_noise_without_renormalising():
    n = 20000
    labels = np.arange(n) % 4
    provider = TargetProvider(None, labels, "noise-const", seed=3)
    onehot = np.eye(4)[labels]
    t0 = provider.targets(0).numpy().astype(np.float64)
    noise = t0 - onehot
    assert abs(noise.mean()) < 0.01
    np.testing.assert_allclose(noise.var(axis=0), 0.1, atol=0.006)
    # Neither clipped nor renormalised (the paper adds the noise vector as it is).
    assert (t0 < 0).any() and (t0 > 1).any()
    assert np.abs(t0.sum(axis=1) - 1).max() > 0.5
    # Redrawn per epoch, reproducible per (seed, epoch).
    assert not np.allclose(provider.targets(1).numpy(), t0)
    np.testing.assert_array_equal(TargetProvider(None, labels, "noise-const", seed=3).targets(0).numpy(), t0.astype(np.float32))


def test_noise_teacher_var_uses_per_class_variance_of_mean_teacher_over_dataset():
    rng = np.random.default_rng(0)
    n = 30000
    labels = rng.integers(0, 4, n)
    # Teachers confident on class 0 with varying strength, so the per-class variances differ.
    logits = rng.normal(size=(n, 3, 4)) * np.array([3.0, 1.0, 0.5, 0.1])
    provider = TargetProvider(logits, labels, "noise-teacher-var", seed=2)
    mean_logits = logits.mean(axis=1)
    p = np.exp(mean_logits) / np.exp(mean_logits).sum(axis=1, keepdims=True)
    expected_var = p.var(axis=0)  # per class, over the training cycles
    np.testing.assert_allclose(np.square(provider.describe()["noise_std"]), expected_var, rtol=1e-6)
    noise = provider.targets(4).numpy().astype(np.float64) - np.eye(4)[labels]
    np.testing.assert_allclose(noise.var(axis=0), expected_var, rtol=0.05)
    assert abs(noise.mean()) < 0.01


def test_raw_logits_targets_are_mean_logits_and_the_loss_does_not_converge():
    provider = TargetProvider(LOGITS, LABELS, "raw-logits", seed=0)
    np.testing.assert_array_equal(provider.targets(0).numpy(), [[1, 1, 0, 0], [2, 0, 0, 0]])

    # Gradient descent on free student logits: with softmax targets the loss settles at the targets'
    # entropy; with raw (unnormalised, some negative) logits it is unbounded below and keeps falling.
    rng = np.random.default_rng(1)
    teacher = rng.normal(size=(32, 2, 4)) * 2
    labels = rng.integers(0, 4, 32)

    def descend(mode: str) -> list[float]:
        targets = TargetProvider(teacher, labels, mode, seed=0).targets(0)
        student = torch.zeros(32, 4, requires_grad=True)
        opt = torch.optim.SGD([student], lr=30.0)  # the loss is a batch mean: per-row steps of ~1
        losses = []
        for _ in range(400):
            opt.zero_grad()
            loss = distillation_loss(student, targets, None, mode)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    mean_losses = descend("mean")
    p = TargetProvider(teacher, labels, "mean", seed=0).targets(0).double()
    entropy = -(p * p.log()).sum(1).mean().item()  # the minimum of CE(p, q), reached at q = p
    assert abs(mean_losses[-1] - entropy) < 1e-3
    raw = descend("raw-logits")
    assert raw[-1] < raw[-50] - 1.0 and raw[-1] < -10  # still falling, far below any entropy


def test_loss_matches_independent_cross_entropy():
    torch.manual_seed(0)
    student = torch.randn(6, 4)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    teacher = np.random.default_rng(3).normal(size=(6, 2, 4))
    p = TargetProvider(teacher, labels.numpy(), "mean", seed=0).targets(0)
    log_q = student - torch.logsumexp(student, dim=1, keepdim=True)
    soft = -(p * log_q).sum(1).mean()
    assert torch.allclose(distillation_loss(student, p, labels, "mean"), soft, atol=1e-6)

    hard = -log_q[torch.arange(6), labels].mean()
    mixed = distillation_loss(student, p, labels, "mean", hard_weight=0.3)
    assert torch.allclose(mixed, 0.7 * soft + 0.3 * hard, atol=1e-6)
    assert torch.allclose(distillation_loss(student, None, labels, "hard"), hard, atol=1e-6)

    # Temperature: targets at T, student at T, soft term scaled by T^2.
    p2 = TargetProvider(teacher, labels.numpy(), "mean", seed=0, temperature=2.0).targets(0)
    log_q2 = student / 2 - torch.logsumexp(student / 2, dim=1, keepdim=True)
    soft2 = -(p2 * log_q2).sum(1).mean() * 4.0
    assert torch.allclose(distillation_loss(student, p2, labels, "mean", temperature=2.0), soft2, atol=1e-6)
    both = distillation_loss(student, p2, labels, "mean", temperature=2.0, hard_weight=0.5)
    assert torch.allclose(both, 0.5 * soft2 + 0.5 * hard, atol=1e-6)

    with pytest.raises(DistillError):
        distillation_loss(student, p, labels, "mean", hard_weight=1.5)
    with pytest.raises(DistillError, match="needs labels"):
        distillation_loss(student, p, None, "mean", hard_weight=0.5)


def test_bad_inputs_are_refused_with_a_reason():
    with pytest.raises(DistillError, match="unknown target mode"):
        TargetProvider(LOGITS, LABELS, "median", seed=0)
    with pytest.raises(DistillError, match="cover 2 cycles but there are 3"):
        TargetProvider(LOGITS, np.array([0, 1, 2]), "mean", seed=0)
    with pytest.raises(DistillError, match="needs teacher logits"):
        TargetProvider(None, LABELS, "random", seed=0)
    bad = LOGITS.copy()
    bad[1, 0, 2] = np.nan
    with pytest.raises(DistillError, match="cycle 1, teacher 0"):
        TargetProvider(bad, LABELS, "mean", seed=0)


# -- teacher selection -------------------------------------------------------------------------
@pytest.fixture
def project(tmp_path):
    proj = Project.create(tmp_path / "sel.rsc")
    teachers = [  # (id, seed, status, score)
        ("t-s3", 3, "done", 60.0),
        ("t-s1", 1, "done", 55.0),
        ("t-s2", 2, "done", 60.0),
        ("t-s5", 5, "done", 58.0),
        ("t-s4", 4, "failed", 99.0),
        ("t-s6", 6, "done", 61.0),
    ]
    for run_id, seed, status, score in teachers:
        runs.insert_run(proj, run_id, group="teachers", kind="teacher", arch="cnn6", seed=seed, spec={})
        if status == "done":
            runs.finish(proj, run_id, metrics={"score": score}, checkpoint=None, epoch=1)
        else:
            runs.mark_failed(proj, run_id, "diverged")
    yield proj
    proj.close()


def test_select_teachers_first_curated_single(project):
    assert select_teachers(project, "teachers", 3) == ["t-s1", "t-s2", "t-s3"]
    assert select_teachers(project, "teachers", None) == ["t-s1", "t-s2", "t-s3", "t-s5", "t-s6"]
    # Best scores 61 (s6), 60 (s2 and s3: tie broken by seed), then 58; the failed run never counts.
    assert select_teachers(project, "teachers", 3, mode="curated") == ["t-s6", "t-s2", "t-s3"]
    assert select_teachers(project, "teachers", 1, mode="single") == ["t-s1"]
    # A run whose checkpoint was picked on a validation split is curated by its validation score.
    runs.finish(project, "t-s5", metrics={"score": 58.0, "selection": "val", "val": {"score": 70.0}}, checkpoint=None,
                epoch=1)
    assert select_teachers(project, "teachers", 3, mode="curated") == ["t-s5", "t-s6", "t-s2"]
    with pytest.raises(DistillError, match="5 finished runs, fewer than the 6"):
        select_teachers(project, "teachers", 6)
    with pytest.raises(DistillError, match="no runs in group"):
        select_teachers(project, "nobody", 1)


# -- batched multi-model training (trainer.train.stacked) ---------------------------------------------
class TinyCNN(nn.Module):
    """CNN6's layer pattern at toy size: conv (no bias), BatchNorm, ReLU, avg-pool; mean+max pooling; head."""

    def __init__(self, classes: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 8, 5, padding=2, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        x = x.unsqueeze(1)
        x = F.avg_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.avg_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = x.mean(dim=3)
        x = x.max(dim=2).values + x.mean(dim=2)
        return self.fc(x)


def _models(k: int, factory) -> list[nn.Module]:
    out = []
    for i in range(k):
        torch.manual_seed(100 + i)
        out.append(factory())
    return out


def _check_stacked_matches_separate(factory, shape):
    from trainer.train.stacked import StackedModels, train_step

    k = 3
    separate = _models(k, factory)
    stacked = StackedModels(_models(k, factory))
    x = torch.randn(k, *shape)
    y = torch.randint(0, 4, (k, shape[0]))

    stacked.eval()
    for m in separate:
        m.eval()
    with torch.no_grad():
        np.testing.assert_allclose(stacked(x).numpy(), torch.stack([m(x[i]) for i, m in enumerate(separate)]).numpy(), atol=1e-5)

    # Two training steps with Adam: every model's weights and BatchNorm statistics follow its separate twin.
    opt = torch.optim.Adam(stacked.parameters(), lr=1e-2)
    opts = [torch.optim.Adam(m.parameters(), lr=1e-2) for m in separate]
    for _ in range(2):
        losses = train_step(stacked, opt, x, y)
        for i, (m, o) in enumerate(zip(separate, opts)):
            m.train()
            o.zero_grad()
            loss = F.cross_entropy(m(x[i]), y[i])
            loss.backward()
            o.step()
            assert abs(losses[i].item() - loss.item()) < 1e-5
    for i, m in enumerate(separate):
        state = stacked.state_dict(i)
        for name, value in m.state_dict().items():
            np.testing.assert_allclose(state[name].numpy(), value.numpy(), atol=1e-5, err_msg=name)
    # Writing back gives modules with the same outputs.
    back = _models(k, factory)
    stacked.load_into(back)
    stacked.eval()
    with torch.no_grad():
        np.testing.assert_allclose(
            stacked(x).numpy(), torch.stack([m.eval()(x[i]) for i, m in enumerate(back)]).numpy(), atol=1e-5
        )


def test_multi_matches_separate_models_tiny_cnn():
    _check_stacked_matches_separate(TinyCNN, (6, 16, 12))


def test_multi_matches_separate_models_registry_cnn6():
    from trainer.models import create_model

    _check_stacked_matches_separate(lambda: create_model("cnn6-tiny", num_classes=4), (4, 32, 32))
