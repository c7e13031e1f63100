"""Hostile checkpoint files (issue 8): a hundred-odd generated cases against a run's resume state and models.

One micro run is stopped after its second epoch, once per module; every case works on a copy of its
project. The two kept states (``state-0001`` and ``state-0002.safetensors``) or the best or final model
are truncated at many offsets, have bytes flipped or scrambled, are replaced by another run's file,
other tensors, a pickle, an empty file, a folder or a link, or are deleted.

What a user can count on, as asserted here:

* only the newest state damaged: the run continues from the one before, names the damaged file in a
  warning, and ends with the metrics and logits of an uninterrupted run, bit for bit;
* both damaged (or the best weights it still needs): ``rsc resume`` exits 2 with one line naming the
  files and the restart command. Nothing is trained, no file is touched, every table keeps its row
  count and ``PRAGMA integrity_check`` says ok; the run's row only turns ``failed`` with that message;
* a damaged final model: ``load_run_model`` refuses it by name; the stored metrics and logits stay.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from conftest import copy_project

from trainer import runs
from trainer.cli import main as rsc
from trainer.project import Project
from trainer.train import RunStopped, TrainError, TrainSpec, create_run, load_run_model, resume, run_training

TABLES = ("runs", "run_epochs", "outputs", "checkpoints", "cycle_sets", "cycle_set_members", "cycles", "recordings")
STATES = ("state-0001.safetensors", "state-0002.safetensors")


def micro_spec(**changes) -> TrainSpec:
    settings = dict(arch="cnn6-tiny", seed=1, group="micro", epochs=3, batch_size=8, lr=3e-3, device="cpu",
                    model_args={"channels": [2, 4, 8, 16]}, cpu_threads=1)
    settings.update(changes)
    return TrainSpec(**settings)


@dataclass
class Base:
    path: Path  # the project: a reference run done, run `stopped` and `best` after epoch 2, `other` after 1
    stopped: str
    best: str
    other: str
    reference: str
    metrics: dict
    logits: np.ndarray


def _stop_after(project: Project, spec: TrainSpec, epochs: int) -> str:
    rid = create_run(project, spec)
    with pytest.raises(RunStopped):
        run_training(project, rid, should_stop=lambda: len(runs.run_epochs(project, rid)) == epochs)
    return rid


def _logits(project: Project, run_id: str) -> np.ndarray:
    ids = runs.run_cycle_ids(project, run_id)
    return runs.load_logits(project, [run_id], ids)[:, 0]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Base:
    from trainer.data.icbhi import import_icbhi
    from trainer.data.synth import write_synthetic_dataset

    torch.set_num_threads(1)
    data = tmp_path_factory.mktemp("hostile-ckpt-synth")
    write_synthetic_dataset(data, recordings=10, seed=3, duration=10.0)
    path = tmp_path_factory.mktemp("hostile-ckpt") / "base.rsc"
    with Project.create(path) as project:
        import_icbhi(project, data)
        reference = create_run(project, micro_spec())
        metrics = run_training(project, reference)
        stopped = _stop_after(project, micro_spec(), 2)
        other = _stop_after(project, micro_spec(seed=2, group="other"), 1)
        best = _stop_after(project, micro_spec(select="test", group="best"), 2)
        logits = _logits(project, reference)
    return Base(path, stopped, best, other, reference, metrics, logits)


# -- what is done to a file ---------------------------------------------------------------------------
Damage = Callable[[Path, Base], None]


def _truncate(offset: int | None = None, fraction: float | None = None) -> Damage:
    def damage(path: Path, base: Base) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: offset if offset is not None else int(len(data) * fraction)])
    return damage


def _header_end(path: Path) -> int:
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def _truncate_at_header(delta: int) -> Damage:
    return lambda path, base: path.write_bytes(path.read_bytes()[: _header_end(path) + delta])


def _flip_byte(fraction: float) -> Damage:
    def damage(path: Path, base: Base) -> None:
        data = bytearray(path.read_bytes())
        data[min(int(len(data) * fraction), len(data) - 1)] ^= 0xFF
        path.write_bytes(bytes(data))
    return damage


def _flip_header_byte(position: int) -> Damage:
    def damage(path: Path, base: Base) -> None:
        data = bytearray(path.read_bytes())
        data[position] ^= 0x01
        path.write_bytes(bytes(data))
    return damage


def _scramble(fraction: float, span: int) -> Damage:
    def damage(path: Path, base: Base) -> None:
        data = bytearray(path.read_bytes())
        start = min(int(len(data) * fraction), max(0, len(data) - span))
        data[start : start + span] = np.random.default_rng(start).integers(0, 256, min(span, len(data) - start),
                                                                            dtype=np.uint8).tobytes()
        path.write_bytes(bytes(data))
    return damage


def _rewrite(change: Callable[[dict[str, torch.Tensor]], None]) -> Damage:
    """A valid safetensors file with the same metadata and other numbers."""
    def damage(path: Path, base: Base) -> None:
        from safetensors import safe_open
        from safetensors.torch import save_file

        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata()
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        change(tensors)
        save_file(tensors, str(path), metadata=meta)
    return damage


def _flip_sign(tensors: dict) -> None:
    key = next(k for k, v in tensors.items() if v.is_floating_point() and v.abs().sum() > 0)
    tensors[key] = -tensors[key]


def _random_values(tensors: dict) -> None:
    gen = torch.Generator().manual_seed(0)
    for key, value in tensors.items():
        if value.is_floating_point():
            tensors[key] = torch.randn(value.shape, generator=gen, dtype=value.dtype)


def _one_tensor_dropped(tensors: dict) -> None:
    tensors.pop(next(iter(tensors)))


def _tiny_change(tensors: dict) -> None:
    key = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel())
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = torch.nextafter(tensors[key].view(-1)[0], torch.tensor(float("inf")))


def _other_runs_file(path: Path, base: Base) -> None:
    path.write_bytes((checkpoint_dir_of(path, base.other) / "state-0001.safetensors").read_bytes())


def _pickle(path: Path, base: Base) -> None:
    torch.save({"model.fc1.weight": torch.zeros(3)}, path)


def _raw_pickle(path: Path, base: Base) -> None:
    path.write_bytes(pickle.dumps({"epoch": 2, "weights": [1.0, 2.0]}))


def _empty(path: Path, base: Base) -> None:
    path.write_bytes(b"")


def _deleted(path: Path, base: Base) -> None:
    path.unlink()


def _folder(path: Path, base: Base) -> None:
    path.unlink()
    path.mkdir()


def _link_to_other(path: Path, base: Base) -> None:
    path.unlink()
    path.symlink_to(checkpoint_dir_of(path, base.other) / "state-0001.safetensors")


def _zeros_same_size(path: Path, base: Base) -> None:
    path.write_bytes(bytes(path.stat().st_size))


def checkpoint_dir_of(path: Path, run_id: str) -> Path:
    return path.parent.parent / run_id


DAMAGES: dict[str, Damage] = {
    **{f"truncated to {n} bytes": _truncate(offset=n) for n in (0, 1, 7, 8, 9, 64)},
    **{f"truncated at header end {d:+d}": _truncate_at_header(d) for d in (-2, -1, 0, 1, 4)},
    **{f"truncated to {f:.0%}": _truncate(fraction=f) for f in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)},
    **{f"byte flipped at {f:.0%}": _flip_byte(f) for f in (0.02, 0.3, 0.5, 0.7, 0.999)},
    **{f"header byte {p} flipped": _flip_header_byte(p) for p in (0, 3, 8, 20)},
    **{f"{n} bytes scrambled at {f:.0%}": _scramble(f, n) for f in (0.2, 0.6) for n in (16, 50_000)},
    "a tensor's sign flipped": _rewrite(_flip_sign),
    "other tensors, same names": _rewrite(_random_values),
    "a tensor dropped": _rewrite(_one_tensor_dropped),
    "one value one ulp off": _rewrite(_tiny_change),
    "another run's file": _other_runs_file,
    "a torch pickle renamed": _pickle,
    "a plain pickle renamed": _raw_pickle,
    "an empty file": _empty,
    "zeros of the same size": _zeros_same_size,
    "deleted": _deleted,
    "a folder in its place": _folder,
    "a link to another run's file": _link_to_other,
}


# -- the checks ---------------------------------------------------------------------------------------
def _counts(path: Path) -> dict[str, int]:
    with Project.open(path) as project:
        counts = {table: project.db[table].count for table in TABLES}
        assert project.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return counts


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: ("dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.iterdir()) if p.exists()}


def _copy(base: Base, tmp_path: Path) -> Path:
    return copy_project(base.path, tmp_path / "p.rsc")


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_resume_refuses_a_run_whose_kept_states_are_both_damaged(base, tmp_path, capsys, damage):
    path = _copy(base, tmp_path)
    folder = Project.artifacts_of(path) / "runs" / base.stopped
    for name in STATES:
        DAMAGES[damage](folder / name, base)
    before, on_disk = _counts(path), _snapshot(folder)
    assert rsc(["resume", str(path), base.stopped]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"rsc resume: run {base.stopped}: none of its last checkpoints can be trusted"), err
    assert all(str(folder / name) in err for name in STATES), err
    assert f"rsc resume --restart {path} {base.stopped}" in err
    assert _counts(path) == before and _snapshot(folder) == on_disk
    with Project.open(path) as project:
        run = runs.get_run(project, base.stopped)
        assert run.status == "failed" and "none of its last checkpoints" in run.error
        assert runs.run_cycle_ids(project, base.stopped) == []


# Only the newest damaged: a fallback, which trains one epoch; a sample of the damages keeps this fast.
FALLBACKS = ["truncated to 0 bytes", "truncated at header end +0", "truncated to 50%", "byte flipped at 70%",
             "50000 bytes scrambled at 60%", "a tensor's sign flipped", "one value one ulp off",
             "another run's file", "a torch pickle renamed", "deleted", "a folder in its place"]


@pytest.mark.parametrize("damage", FALLBACKS)
def test_a_damaged_newest_state_is_passed_over_with_a_warning_and_the_result_is_unchanged(base, tmp_path, damage):
    path = _copy(base, tmp_path)
    folder = Project.artifacts_of(path) / "runs" / base.stopped
    newest = folder / STATES[1]
    DAMAGES[damage](newest, base)
    events: list[dict] = []
    with Project.open(path) as project:
        assert resume(project, base.stopped, progress=events.append) == base.metrics
        np.testing.assert_array_equal(_logits(project, base.stopped), base.logits)
        assert [row["epoch"] for row in runs.run_epochs(project, base.stopped)] == [1, 2, 3]
        assert runs.checkpoint_records(project, base.stopped).keys() == {"model.safetensors"}
    (warning,) = [e["message"] for e in events if e["phase"] == "warning"]
    assert warning.startswith(f"{newest}: ") and "continues from epoch 1" in warning, warning
    assert not any(folder.glob("state-*.safetensors"))


def test_the_command_line_resumes_past_a_damaged_newest_state(base, tmp_path, capsys):
    path = _copy(base, tmp_path)
    DAMAGES["truncated to 50%"](Project.artifacts_of(path) / "runs" / base.stopped / STATES[1], base)
    assert rsc(["resume", str(path), base.stopped, "--quiet"]) == 0
    assert f"done {base.stopped}: " in capsys.readouterr().out
    with Project.open(path) as project:
        assert runs.get_run(project, base.stopped).metrics == base.metrics
        np.testing.assert_array_equal(_logits(project, base.stopped), base.logits)


@pytest.mark.parametrize("damage", ["truncated to 50%", "a tensor's sign flipped", "an empty file", "deleted",
                                    "another run's file"])
def test_damaged_best_weights_a_run_still_needs_are_refused_by_name(base, tmp_path, capsys, damage):
    path = _copy(base, tmp_path)
    folder = Project.artifacts_of(path) / "runs" / base.best
    best = folder / "best.safetensors"
    with Project.open(path) as project:
        best_epoch = runs.checkpoint_records(project, base.best)["best.safetensors"].epoch
    if damage == "another run's file":
        best.write_bytes((folder / STATES[0]).read_bytes())
    else:
        DAMAGES[damage](best, base)
    before = _counts(path)
    assert rsc(["resume", str(path), base.best]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rsc resume: {best}: ") and err.count("\n") == 1 and "--restart" in err, err
    assert best_epoch <= 2 and _counts(path) == before


@pytest.mark.parametrize("damage", [name for name in DAMAGES if "another run" not in name])
def test_a_damaged_final_model_is_refused_by_name_and_its_stored_results_stay(base, tmp_path, damage):
    path = _copy(base, tmp_path)
    model_file = Project.artifacts_of(path) / "runs" / base.reference / "model.safetensors"
    with Project.open(path) as project:
        assert load_run_model(project, base.reference) is not None  # a copy under another name finds its model
        DAMAGES[damage](model_file, base)
        with pytest.raises(TrainError) as refused:
            load_run_model(project, base.reference)
        assert str(refused.value).startswith(f"{model_file}: "), refused.value
        np.testing.assert_array_equal(_logits(project, base.reference), base.logits)
        assert runs.get_run(project, base.reference).metrics == base.metrics


def test_a_state_written_without_a_recorded_checksum_is_not_trusted(base, tmp_path):
    path = _copy(base, tmp_path)
    folder = Project.artifacts_of(path) / "runs" / base.stopped
    (folder / STATES[1]).rename(folder / "state.safetensors")  # as versions before checksums left it
    (folder / STATES[0]).unlink()
    events: list[dict] = []
    with Project.open(path) as project:
        runs.forget_checkpoints(project, base.stopped)
        assert resume(project, base.stopped, progress=events.append) == base.metrics
        np.testing.assert_array_equal(_logits(project, base.stopped), base.logits)
    (warning,) = [e["message"] for e in events if e["phase"] == "warning"]
    assert "state.safetensors: written without a recorded checksum" in warning
    assert not (folder / "state.safetensors").exists()
