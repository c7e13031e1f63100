"""Multi-representation collaborative distillation: the loss, and a lockstep job stored as one run per model."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import copy_project
from trainer import runs
from trainer.cli import main as rsc
from trainer.features import load_features
from trainer.project import Project
from trainer.runs import load_logits, run_cycle_ids
from trainer.train import TrainError, TrainSpec, load_run_model, training_cycles
from trainer.train import RunStopped
from trainer.train.collab import collab_losses, create_collab_runs, train_collab

MICRO = {"channels": [2, 4, 8, 16]}


def micro_spec(feature_set: str, **changes) -> TrainSpec:
    settings = dict(arch="cnn6-tiny", seed=1, epochs=2, batch_size=8, lr=3e-3, device="cpu", feature_set=feature_set,
                    model_args=dict(MICRO, feature_set=feature_set))
    settings.update(changes)
    return TrainSpec(**settings)


@pytest.fixture(scope="module")
def spectral_base(tmp_path_factory, micro_base):
    """micro_base with its stft and mfcc features cached too, once for the module."""
    path = copy_project(micro_base, tmp_path_factory.mktemp("spectral") / "base.rsc")
    with Project.open(path) as project:
        train, test = training_cycles(project)
        for name in ("stft", "mfcc"):
            load_features(project, name, train + test)
    return path


@pytest.fixture
def project(tmp_path, spectral_base):
    with Project.open(copy_project(spectral_base, tmp_path / "p.rsc")) as opened:
        yield opened


def test_the_loss_is_cross_entropy_plus_the_scaled_kl_to_the_mean_of_the_peers():
    a = torch.tensor([[2.0, 0.0, -1.0, 0.5], [0.0, 1.0, 0.0, 0.0]], requires_grad=True)
    b = torch.tensor([[0.0, 3.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]], requires_grad=True)
    c = torch.tensor([[1.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 4.0]], requires_grad=True)
    labels = torch.tensor([0, 3])
    t, w = 2.0, 0.5
    losses = collab_losses([a, b, c], labels, w, t)
    for own, peers, loss in ((a, (b, c), losses[0]), (b, (a, c), losses[1]), (c, (a, b), losses[2])):
        q = sum(F.softmax(p.detach() / t, dim=-1) for p in peers) / 2
        kl = F.kl_div(F.log_softmax(own / t, dim=-1), q, reduction="batchmean")
        expected = F.cross_entropy(own, labels) + w * t * t * kl
        assert math.isclose(loss.item(), expected.item(), rel_tol=1e-6)
    # the peers are targets, not paths for the gradient: a's loss moves a alone
    losses[0].backward()
    assert a.grad is not None and b.grad is None and c.grad is None
    # models that already agree pay only the label term
    same = collab_losses([a.detach(), a.detach()], labels, 1.0, 1.0)
    assert math.isclose(same[0].item(), F.cross_entropy(a.detach(), labels).item(), rel_tol=1e-6)


def test_a_lockstep_job_stores_one_loadable_run_per_representation(project):
    train, test = training_cycles(project)
    ids = create_collab_runs(project, [micro_spec(fs) for fs in ("cnn", "stft", "mfcc")], 1.0, 1.0, "job")
    metrics = train_collab(project, ids)
    assert set(metrics) == set(ids)
    for run_id, fs in zip(ids, ("cnn", "stft", "mfcc")):
        run = runs.get_run(project, run_id)
        assert run.status == runs.DONE and run.group == f"job-{fs}" and run.spec["feature_set"] == fs
        assert run.spec["targets"] == {"kind": "collab", "peers": [i for i in ids if i != run_id], "peer_weight": 1.0,
                                       "temperature": 1.0, "representation": fs, "job_group": "job"}
        assert [e["epoch"] for e in runs.run_epochs(project, run_id)] == [1, 2]
        cycle_ids = run_cycle_ids(project, run_id)
        assert sorted(cycle_ids) == sorted(r["id"] for r in train + test)
        stored = load_logits(project, [run_id], cycle_ids)[:, 0]
        # alone: the run's model on its own features gives the logits stored for it
        model = load_run_model(project, run_id)
        assert model.feature_set == fs
        x = load_features(project, fs, cycle_ids[:6])
        with torch.no_grad():
            assert torch.allclose(model(x), torch.as_tensor(stored[:6]), atol=1e-4)
    # different inputs, different models
    first, second = (load_logits(project, [i], run_cycle_ids(project, ids[0]))[:, 0] for i in ids[:2])
    assert not torch.allclose(torch.as_tensor(first), torch.as_tensor(second))


def test_a_collaborative_job_is_refused_a_second_training_and_mismatched_settings(project):
    with pytest.raises(TrainError, match="must share epochs"):
        create_collab_runs(project, [micro_spec("cnn"), micro_spec("stft", epochs=3)], 1.0, 1.0, "bad")
    with pytest.raises(TrainError, match="its own representation"):
        create_collab_runs(project, [micro_spec("cnn"), micro_spec("cnn")], 1.0, 1.0, "bad")
    with pytest.raises(TrainError, match="at least two"):
        create_collab_runs(project, [micro_spec("cnn")], 1.0, 1.0, "bad")
    assert runs.list_runs(project) == []
    ids = create_collab_runs(project, [micro_spec("cnn", epochs=1), micro_spec("mfcc", epochs=1)], 0.5, 2.0, "once")
    train_collab(project, ids)
    with pytest.raises(TrainError, match="cannot resume"):
        train_collab(project, ids)


def test_rsc_collab_trains_the_representations_and_refuses_bad_ones(project, capsys):
    path = str(project.path)
    assert rsc(["collab", path, "--arch", "cnn6-tiny", "--representations", "cnn,stft", "--group", "cli",
                "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--model-arg", "channels=2,4,8,16",
                "--quiet"]) == 0
    done = [line for line in capsys.readouterr().out.splitlines() if line.startswith("done ")]
    assert len(done) == 2
    assert sorted(runs.group_names(project)) == ["cli-cnn", "cli-stft"]
    assert rsc(["collab", path, "--arch", "cnn6-tiny", "--representations", "cnn,wavelet"]) == 2
    assert "unknown representation 'wavelet'" in capsys.readouterr().err


def test_a_stopped_job_cancels_every_run_and_cannot_resume(project):
    ids = create_collab_runs(project, [micro_spec("cnn"), micro_spec("stft")], 1.0, 1.0, "stopped")
    asked = []
    with pytest.raises(RunStopped, match="cannot resume"):
        train_collab(project, ids, should_stop=lambda: asked.append(1) or len(asked) > 1)
    assert [runs.status_of(project, i) for i in ids] == [runs.CANCELLED, runs.CANCELLED]
    with pytest.raises(TrainError, match="cannot resume"):
        train_collab(project, ids)


MICRO_ARGS = ["--arch", "cnn6-tiny", "--epochs", "1", "--batch-size", "8", "--device", "cpu",
              "--model-arg", "channels=2,4,8,16", "--quiet"]


def test_a_queued_collaborative_job_is_trained_whole_by_one_worker(project, capsys):
    from trainer.jobs import run_worker

    path = str(project.path)
    assert rsc(["distill", path, "--mode", "collab", *MICRO_ARGS, "--representations", "cnn,mfcc", "--seeds", "1,2",
                "--group", "q", "--queue"]) == 0
    queued = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("queued ")]
    assert len(queued) == 4 and all(runs.status_of(project, i) == runs.QUEUED for i in queued)
    handled = run_worker(project.path, once=True)
    assert sorted(handled) == sorted(queued)
    for run_id in queued:
        run = runs.get_run(project, run_id)
        assert run.status == runs.DONE and run.kind == "collab" and run.group in ("q-cnn", "q-mfcc")
        assert [e["epoch"] for e in runs.run_epochs(project, run_id)] == [1]
        peer = runs.get_run(project, run.spec["targets"]["peers"][0])  # a job is one seed, trained together
        assert peer.seed == run.seed and peer.group != run.group


def test_a_job_with_a_cancelled_model_fails_whole_and_is_run_again_whole(project):
    from trainer.jobs import run_worker, submit_collab, submit_collab_again
    from trainer.jobs.specs import CollabChoices, TrainChoices, collab_jobs
    from trainer.project import ProjectError

    choices = TrainChoices(arch="cnn6-tiny", epochs=1, batch_size=8, device="cpu", model_args=["channels=2,4,8,16"],
                           group="c")
    ids = submit_collab(project, collab_jobs(project, choices, CollabChoices(("cnn", "stft"))))
    runs.cancel(project, ids[1])  # its queued peer goes with it: it could never train alone
    assert [runs.status_of(project, i) for i in ids] == [runs.CANCELLED, runs.CANCELLED]
    assert run_worker(project.path, once=True) == []
    with project.transaction():  # a peer left queued by an older version is failed with the reason, not waited on
        project.db.execute("UPDATE runs SET status = 'queued' WHERE id = ?", [ids[0]])
    run_worker(project.path, once=True)
    first = runs.get_run(project, ids[0])
    assert first.status == runs.FAILED and "train only together" in first.error
    with pytest.raises(ProjectError, match="cannot resume"):
        runs.requeue(project, ids[0])
    again = submit_collab_again(project, ids[1])
    assert [runs.get_run(project, i).group for i in again] == ["c-stft", "c-cnn"]
    run_worker(project.path, once=True)
    assert [runs.status_of(project, i) for i in again] == [runs.DONE, runs.DONE]


def test_collaborative_choices_that_make_no_job_are_refused_before_anything_is_stored(project, capsys):
    from trainer.jobs.specs import CollabChoices, SpecError, TrainChoices, collab_jobs

    choices = TrainChoices(arch="cnn6-tiny")
    for collab, why in ((CollabChoices(("cnn",)), "at least two"), (CollabChoices(("cnn", "cnn")), "at least two"),
                        (CollabChoices(("cnn", "wavelet")), "unknown representation"),
                        (CollabChoices(peer_weight=-1.0), "peer weight"), (CollabChoices(temperature=0.0), "temperature")):
        with pytest.raises(SpecError, match=why):
            collab_jobs(project, choices, collab)
    assert rsc(["distill", str(project.path), "--mode", "collab", "--teachers", "t", *MICRO_ARGS]) == 2
    assert "no teacher group" in capsys.readouterr().err
    assert rsc(["distill", str(project.path), "--mode", "mean", *MICRO_ARGS]) == 2
    assert "needs --teachers" in capsys.readouterr().err
    assert runs.list_runs(project) == []
