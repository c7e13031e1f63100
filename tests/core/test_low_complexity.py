"""Low-complexity students (CP-Mobile) and the CPU recipe: the DCASE limits by the project's own MAC
counter, a regularised receptive field, learning, training and distillation as runs, safetensors and ONNX
round trips, class balancing by loss or by a seeded sampler that resumes bit for bit, and recipes that
leave stored runs and the -tiny recipe as they were."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import copy_project

from trainer.distill import distillation_loss
from trainer.features.sets import FEATURE_SETS
from trainer.models import ModelError, create_model, list_models, model_entry, model_info
from trainer.models.cpmobile import SIZES, receptive_field
from trainer.project import Project
from trainer.runs import load_logits, run_cycle_ids, run_epochs
from trainer.train import RunStopped, TrainError, TrainSpec, create_run, load_run_model, resume, run_training
from trainer.train.spec import CPU_DEFAULTS, TINY_DEFAULTS
from trainer.train.tasks import balanced_loss, class_weights

CYCLE_SECONDS = FEATURE_SETS["cnn"].prep.duration
MICRO = {"stem": [2, 4], "channels": [4, 8]}  # cpmobile-tiny made smaller still: the mechanics, in seconds


@pytest.fixture
def project(tmp_path, micro_base):
    with Project.open(copy_project(micro_base, tmp_path / "p.rsc")) as opened:
        yield opened


def micro(**changes) -> TrainSpec:
    settings = dict(arch="cpmobile-tiny", seed=1, group="lc", epochs=2, device="cpu", model_args=MICRO, recipe="cpu")
    settings.update(changes)
    return TrainSpec(**settings)


# --------------------------------------------------------------------------------------------------------
# The architectures
# --------------------------------------------------------------------------------------------------------
def test_cpmobile_s_keeps_the_dcase_limits_of_30_mmac_per_second_and_128k_parameters():
    assert CYCLE_SECONDS == 8.0 and FEATURE_SETS["cnn"].shape == (798, 128)
    info = model_info("cpmobile-s")
    assert info["params"] <= 128_000
    assert info["macs_per_cycle"] / CYCLE_SECONDS <= 30e6
    assert info["macs_per_cycle"] > 20e6  # a real network, not an empty one that passes by accident


def test_cpmobile_m_costs_a_few_hundred_mmac_per_second_and_both_are_registered_students():
    per_second = model_info("cpmobile-m")["macs_per_cycle"] / CYCLE_SECONDS
    assert 100e6 <= per_second <= 900e6
    assert {"cpmobile-s", "cpmobile-m", "cpmobile-tiny"} <= set(list_models())
    assert "cpmobile-tiny" not in list_models(include_tiny=False) and "cpmobile-s" in list_models(include_tiny=False)
    for name in ("cpmobile-s", "cpmobile-m"):
        entry = model_entry(name)
        assert entry.feature_set == "cnn" and entry.family == "cpmobile" and not entry.tiny


def _measured_frequency_field(model) -> int:
    """Bins of the input that reach one position of the last stage, found by backpropagating from it.

    Every batch norm adds a large bias, so every ReLU passes and the gradient reaches all that is connected."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(module.weight)
            torch.nn.init.constant_(module.bias, 10.0)
    x = torch.zeros(1, 400, 128, requires_grad=True)
    out = model.blocks(model.stem(x.unsqueeze(1)))
    out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    bins = torch.nonzero(x.grad[0].abs().sum(dim=0)).flatten()
    return int(bins.max() - bins.min() + 1)


@pytest.mark.parametrize("size", ["s", "tiny"])
def test_the_frequency_receptive_field_is_what_the_design_says_and_smaller_than_the_spectrum(size):
    torch.manual_seed(0)
    model = create_model(f"cpmobile-{size}").eval()
    frames, bins = receptive_field(SIZES[size])
    assert _measured_frequency_field(model) == bins
    assert bins < 128 and frames > bins


def test_settings_change_the_widths_and_bad_settings_are_refused_in_one_line():
    wide = create_model("cpmobile-s", channels=[32, 64, 96], dropout=0.1)
    assert wide.embedding_dim == 96 and wide.spec == {"name": "cpmobile-s", "num_classes": 4, "channels": [32, 64, 96],
                                                      "dropout": 0.1}
    with pytest.raises(ModelError, match="unknown setting.*width"):
        create_model("cpmobile-s", width=3)
    with pytest.raises(ModelError, match="channels"):
        create_model("cpmobile-s", channels=[8, 16])
    with pytest.raises(ModelError, match="no published weights"):
        create_model("cpmobile-m", pretrained="hub")


@pytest.mark.parametrize("name", ["cpmobile-s", "cpmobile-m"])
def test_one_adam_step_lowers_the_loss_on_a_fixed_batch(name):
    torch.manual_seed(0)
    model = create_model(name).train()
    x = torch.randn(4, 400, 128, generator=torch.Generator().manual_seed(1))  # half a cycle: the same layers
    y = torch.tensor([0, 1, 2, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = F.cross_entropy(model(x), y)
    assert after < before - 1e-3


def test_cpmobile_s_exports_to_onnx_and_gives_the_torch_logits(tmp_path, icbhi_dir):
    from trainer.audio import prepare_recording_cycles, read_audio
    from trainer.infer.classify import OnnxModel, TorchModels
    from trainer.infer.export import export_model

    torch.manual_seed(0)
    model = create_model("cpmobile-s").eval()
    for module in model.modules():  # trained-looking batch norms, so every branch counts in the comparison
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.running_var, 0.5, 2.0)
    card = export_model(model, tmp_path / "s.onnx")
    onnx = OnnxModel(tmp_path / "s.onnx")
    wave, rate = read_audio(sorted((icbhi_dir / "ICBHI_final_database").glob("*.wav"))[0])
    waves = prepare_recording_cycles(wave, rate, [(0.5, 3.0), (3.0, 9.0), (9.0, 19.0)], onnx.prep)
    ours = onnx.logits(onnx.features(waves))
    reference = TorchModels([model], "cpmobile-s", card["classes"])
    theirs = reference.logits(reference.features(waves))
    assert ours.shape == (3, 4) and np.abs(theirs).max() > 1e-3
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)


# --------------------------------------------------------------------------------------------------------
# Recipes and stored runs
# --------------------------------------------------------------------------------------------------------
def test_low_complexity_students_get_the_cpu_recipe_and_tiny_models_keep_theirs():
    student = TrainSpec(arch="cpmobile-s", device="cpu").resolved()
    for key, value in CPU_DEFAULTS.items():
        assert getattr(student, key) == value
    assert student.select == "val" and student.balance == "sampler" and student.spec_augment
    tiny = TrainSpec(arch="cnn6-tiny", device="cpu").resolved()
    assert (tiny.epochs, tiny.batch_size, tiny.lr, tiny.spec_augment) == (10, 8, 2e-3, False)
    assert TINY_DEFAULTS == {"epochs": 10, "batch_size": 8, "lr": 2e-3, "spec_augment": False}
    assert (tiny.select, tiny.balance) == ("last", "none")
    asked = TrainSpec(arch="cnn6-tiny", device="cpu", recipe="cpu", epochs=5, balance="loss").resolved()
    assert (asked.epochs, asked.batch_size, asked.select, asked.balance) == (5, 16, "val", "loss")
    family = TrainSpec(arch="cpmobile-s", device="cpu", recipe="family").resolved()
    assert (family.epochs, family.batch_size, family.balance, family.select) == (200, 128, "none", "last")
    with pytest.raises(TrainError, match="class balance 'oversample'"):
        TrainSpec(arch="cpmobile-s", balance="oversample").resolved()
    with pytest.raises(TrainError, match="recipe 'laptop'"):
        TrainSpec(arch="cpmobile-s", recipe="laptop").resolved()


def test_a_spec_stored_before_balancing_means_no_balancing_and_new_ones_store_the_same_dict():
    new = TrainSpec(arch="cnn6-tiny", device="cpu").resolved().to_dict()
    assert "balance" not in new  # equal to what an older version stored for the same settings
    stored = {k: v for k, v in new.items() if k != "recipe"}
    assert TrainSpec.from_dict(stored).balance == "none"
    assert TrainSpec.from_dict(stored).resolved().to_dict() == new
    balanced = TrainSpec(arch="cnn6-tiny", device="cpu", balance="sampler").resolved().to_dict()
    assert balanced["balance"] == "sampler" and TrainSpec.from_dict(balanced).balance == "sampler"


# --------------------------------------------------------------------------------------------------------
# Class balance
# --------------------------------------------------------------------------------------------------------
def test_class_weights_give_every_present_class_the_same_total_weight():
    labels = torch.tensor([0] * 53 + [1] * 27 + [2] * 13 + [3] * 7)
    weights = class_weights(labels)
    totals = torch.bincount(labels, weights=weights[labels].double())
    np.testing.assert_allclose(totals.numpy(), 25.0, rtol=1e-6)
    assert class_weights(torch.tensor([0, 0, 1]))[2:].tolist() == [0.0, 0.0]


def test_the_balanced_loss_with_equal_weights_is_the_distillation_loss():
    gen = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(6, 4, generator=gen), torch.tensor([0, 1, 2, 3, 0, 1])
    targets = torch.softmax(torch.randn(6, 4, generator=gen), dim=1)
    ones = torch.ones(4)
    assert torch.allclose(balanced_loss(logits, None, labels, ones), distillation_loss(logits, None, labels, "hard"))
    for temperature, hard_weight in ((1.0, 0.0), (2.0, 0.3)):
        ours = balanced_loss(logits, targets, labels, ones, temperature=temperature, hard_weight=hard_weight)
        theirs = distillation_loss(logits, targets, labels, "mean", temperature=temperature, hard_weight=hard_weight)
        assert torch.allclose(ours, theirs)
    weighted = balanced_loss(logits, None, labels, torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert torch.allclose(weighted, F.cross_entropy(logits, labels, weight=torch.tensor([1.0, 2.0, 3.0, 4.0])))


def test_the_sampler_draws_the_classes_evenly_from_the_epochs_order_stream():
    from trainer.train.checkpoint import LoopState
    from trainer.train.data import TrainData
    from trainer.train.hooks import Hooks
    from trainer.train.loop import FitLoop

    class Recording:
        def __init__(self):
            self.labels: list[int] = []

        def start_epoch(self, epoch_index):
            pass

        def forward(self, model, batch):
            self.labels += batch.labels.tolist()
            return model(batch.x).sum() * 0.0, None

    labels = torch.tensor([0] * 140 + [1] * 40 + [2] * 14 + [3] * 6)
    data = TrainData([], [], x_all=torch.zeros(len(labels), 64, 128), x_test=torch.zeros(0, 64, 128), y_all=labels,
                     y_test=labels[:0], fit_pos=torch.arange(len(labels)), val_pos=labels[:0])
    model = create_model("cpmobile-tiny", **MICRO)
    drawn = []
    for _ in range(2):
        task = Recording()
        spec = TrainSpec(arch="cpmobile-tiny", device="cpu", batch_size=100, balance="sampler").resolved()
        optimizer = torch.optim.Adam(model.parameters())
        scaler = torch.amp.GradScaler("cuda", enabled=False)
        loop = FitLoop(run_id="t", spec=spec, model=model, optimizer=optimizer, scaler=scaler, task=task, data=data,
                       device=torch.device("cpu"), hooks=Hooks(), checkpoint=None, state=LoopState())
        loop.train_epoch()
        drawn.append(task.labels)
    assert drawn[0] == drawn[1]  # the same epoch of the same seed draws the same cycles
    shares = np.bincount(drawn[0], minlength=4) / len(drawn[0])
    assert len(drawn[0]) == len(labels) and np.all(np.abs(shares - 0.25) < 0.1)  # not 70/20/7/3


# --------------------------------------------------------------------------------------------------------
# Runs: train, distil, resume, round trips
# --------------------------------------------------------------------------------------------------------
def test_a_cpu_recipe_run_selects_on_validation_and_its_safetensors_model_gives_its_stored_logits(project):
    rid = create_run(project, micro())
    metrics = run_training(project, rid)
    assert metrics["selection"] == "val" and "val" in metrics and 1 <= metrics["epoch"] <= 2
    model = load_run_model(project, rid)
    assert type(model).__name__ == "CPMobile" and model.spec["stem"] == [2, 4]
    ids = run_cycle_ids(project, rid)
    stored = load_logits(project, [rid], ids)[:, 0]
    from trainer.features import load_features

    cycles = {c["id"]: c for c in project.cycles(with_audio=True)}
    x = torch.as_tensor(load_features(project, "cnn", [cycles[i] for i in ids[:8]]))
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), stored[:8], atol=1e-5, rtol=0)


def test_a_cpmobile_student_distils_with_the_class_balanced_loss(project):
    teacher = create_run(project, micro(epochs=1, group="lc-teachers", balance="none"))
    run_training(project, teacher)
    targets = {"kind": "soft", "teachers": [teacher], "mode": "mean", "temperature": 2.0}
    student = create_run(project, micro(epochs=1, group="lc-students", balance="loss", targets=targets))
    metrics = run_training(project, student)
    assert np.isfinite(run_epochs(project, student)[0]["loss"]) and metrics["epoch"] == 1


def test_a_run_with_the_balanced_sampler_resumes_to_the_uninterrupted_result(project):
    whole = create_run(project, micro(group="whole", select="last"))
    run_training(project, whole)
    cut = create_run(project, micro(group="cut", select="last"))
    with pytest.raises(RunStopped):
        run_training(project, cut, should_stop=lambda: len(run_epochs(project, cut)) == 1)
    resume(project, cut)
    ids = run_cycle_ids(project, whole)
    assert ids == run_cycle_ids(project, cut)
    np.testing.assert_array_equal(load_logits(project, [whole], ids), load_logits(project, [cut], ids))
    assert [e["loss"] for e in run_epochs(project, whole)] == [e["loss"] for e in run_epochs(project, cut)]
