"""Export to ONNX and classification of recordings: every tiny architecture exports and agrees with torch,
a trained run goes through `rsc export` and `rsc classify`, bad files give one line each, the ONNX path
runs with torch blocked, and the numpy filterbank equals the torch one."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import REPO, copy_project

from trainer.audio import PrepSettings, prepare_recording_cycles, read_audio
from trainer.cli import main as rsc
from trainer.features.filterbank import KALDI_MEL_FLOOR, kaldi_fbank, kaldi_fbank_numpy
from trainer.infer.classify import (
    DEFAULT_THRESHOLD, UNCERTAIN, ClassifyError, OnnxModel, TorchModels, card_path, classify_file,
)
from trainer.infer.export import ExportError, export_model, export_run, run_card
from trainer.models import create_model, list_models
from trainer.project import Project, stored_classifications
from trainer.vocab import LABELS

TINY = [name for name in list_models() if name.endswith("-tiny")]
MICRO = {"channels": [2, 4, 8, 16]}


@pytest.fixture(scope="module")
def real_wav(icbhi_dir) -> Path:
    return sorted((icbhi_dir / "ICBHI_final_database").glob("*.wav"))[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_template):
    """A demo project copy with one finished micro cnn6-tiny run (1 epoch): (project path, run id)."""
    from trainer.train import TrainSpec, create_run, run_training

    path = copy_project(demo_template, tmp_path_factory.mktemp("trained") / "demo.rsc")
    with Project.open(path) as project:
        run_id = create_run(project, TrainSpec(arch="cnn6-tiny", group="micro", epochs=1, batch_size=8, lr=3e-3,
                                               device="cpu", model_args=MICRO))
        run_training(project, run_id)
    return path, run_id


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """`rsc export --int8 --json` of the trained run: (onnx path, printed JSON)."""
    project, run_id = trained
    out = tmp_path_factory.mktemp("export") / "micro.onnx"
    buffer = io.StringIO()  # capsys is function-scoped
    with contextlib.redirect_stdout(buffer):
        assert rsc(["export", str(project), run_id, str(out), "--int8", "--json"]) == 0
    return out, json.loads(buffer.getvalue())


# --------------------------------------------------------------------------------------------------------
# Every registered tiny architecture
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TINY)
def test_every_tiny_architecture_exports_and_gives_the_torch_logits(name, tmp_path, real_wav):
    torch.manual_seed(0)
    model = create_model(name).eval()
    card = export_model(model, tmp_path / f"{name}.onnx")
    onnx = OnnxModel(tmp_path / f"{name}.onnx")
    reference = TorchModels([model], name, card["classes"])
    wave, rate = read_audio(real_wav)
    waves = prepare_recording_cycles(wave, rate, [(0.5, 3.0), (3.0, 9.0), (9.0, 19.0)], onnx.prep)
    # Three cycles: the batch axis is dynamic (the graph was traced with two).
    ours = onnx.logits(onnx.features(waves))
    theirs = reference.logits(reference.features(waves))
    assert ours.shape == theirs.shape == (3, 4)
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)
    assert card["model"]["arch"] == name and card["classes"] == list(LABELS)
    assert (card["text"] is not None) == model.needs_text


# --------------------------------------------------------------------------------------------------------
# A trained run: export, its card, classification
# --------------------------------------------------------------------------------------------------------
def test_the_card_says_everything_needed_to_use_the_model(exported, trained):
    out, printed = exported
    _, run_id = trained
    card = json.loads(card_path(out).read_text())
    assert card == printed["card"]
    assert card["model"]["file"] == out.name and len(card["model"]["sha256"]) == 64
    assert card["classes"] == list(LABELS)
    assert card["prep"] == {"sample_rate": 16000, "duration": 8.0, "pad": "repeat", "fade": True,
                            "resample_quality": "HQ", "target_samples": 128000}
    assert card["features"]["kind"] == "fbank" and card["features"]["num_mel_bins"] == 128
    assert card["normalization"]["kind"] == "per_sample" and card["normalization"]["in_graph"]
    assert card["model"]["inputs"][0]["shape"] == ["batch", 798, 128]
    run = card["run"]
    assert run["id"] == run_id and run["kind"] == "teacher" and run["teachers"] is None
    assert run["spec"]["model_args"] == MICRO and run["spec"]["epochs"] == 1
    assert {"sp", "se", "score"} <= set(run["metrics"]) and run["code_version"]
    assert card["exported"]["code_version"]


def test_a_students_card_names_its_teacher_group_and_only_finished_runs_export(trained, tmp_path):
    from trainer.runs import get_run
    from trainer.train import TrainSpec, create_run

    project, teacher = trained
    with Project.open(project) as opened:
        student = create_run(opened, TrainSpec(arch="cnn6-tiny", group="micro-students", epochs=1, device="cpu",
                                               model_args=MICRO, targets={"kind": "soft", "teachers": [teacher]}))
        card = run_card(opened, get_run(opened, student))
        with pytest.raises(ExportError, match="queued: only a finished run"):
            export_run(opened, student, create_model("cnn6-tiny", **MICRO), tmp_path / "student.onnx")
    assert card["kind"] == "student" and card["id"] == student
    assert card["teachers"]["group"] == "micro" and card["teachers"]["runs"] == [teacher]
    assert card["teachers"]["mode"] == "mean" and card["teachers"]["k"] == 1


def test_int8_quantisation_reports_its_speed_and_score(exported):
    out, printed = exported
    fp32, int8 = printed["int8"]
    assert not fp32["int8"] and int8["int8"] and fp32["n"] == int8["n"] > 0
    assert fp32["ms_per_cycle"] > 0 and int8["ms_per_cycle"] > 0
    assert abs(int8["score"] - fp32["score"]) <= 100
    int8_card = json.loads(card_path(out.with_suffix(".int8.onnx")).read_text())
    assert int8_card["model"]["quantized_from"]["sha256"] == json.loads(card_path(out).read_text())["model"]["sha256"]


def test_a_real_recording_is_classified_end_to_end(exported, trained, real_wav, capsys):
    out, _ = exported
    project, run_id = trained
    assert rsc(["classify", str(out), str(real_wav), "--json"]) == 0
    onnx = json.loads(capsys.readouterr().out)
    recording = onnx["recordings"][0]
    # ICBHI ships the annotation beside the audio: those cycles are classified, with their labels.
    assert recording["cycles_from"].endswith(real_wav.with_suffix(".txt").name)
    assert len(recording["cycles"]) == len(real_wav.with_suffix(".txt").read_text().split("\n")) - 1
    for cycle in recording["cycles"]:
        assert cycle["source"] == "annotation" and cycle["annotated"] in LABELS
        assert sum(cycle["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert cycle["label"] in (cycle["predicted"], UNCERTAIN)
        assert (cycle["label"] == UNCERTAIN) == (cycle["confidence"] < DEFAULT_THRESHOLD)
    assert recording["version"] == json.loads(card_path(out).read_text())["model"]["sha256"]
    from trainer.runs import checkpoint_records

    with Project.open(project) as opened:
        weights = checkpoint_records(opened, run_id)["model.safetensors"].sha256
    # The torch run gives the same probabilities; a group of that one run too (the mean of one). Both are
    # versioned by the run's model file.
    for spec in (f"{project}:{run_id}", f"{project}:group:micro"):
        assert rsc(["classify", spec, str(real_wav), "--json"]) == 0
        torch_recording = json.loads(capsys.readouterr().out)["recordings"][0]
        cycles = torch_recording["cycles"]
        assert torch_recording["version"] == weights
        for a, b in zip(recording["cycles"], cycles, strict=True):
            assert max(abs(a["probabilities"][k] - b["probabilities"][k]) for k in LABELS) < 1e-4
    # Without the labels, the segmentation finds the cycles.
    assert rsc(["classify", str(out), str(real_wav), "--no-labels", "--segment", "fixed", "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("file,cycle,start,end,source,label,predicted,confidence,p_normal")
    assert len(lines) > 2 and all(",fixed," in line for line in lines[1:])


def test_results_are_stored_in_the_project_and_replaced_when_classified_again(exported, trained, real_wav, capsys):
    out, _ = exported
    project, _ = trained
    for _ in range(2):
        assert rsc(["classify", str(out), str(real_wav), "--project", str(project)]) == 0
    captured = capsys.readouterr()
    assert "stored" in captured.err and real_wav.name in captured.out
    with Project.open(project) as opened:
        rows = stored_classifications(opened, real_wav)
    assert len(rows) == len(real_wav.with_suffix(".txt").read_text().split("\n")) - 1
    assert len({r["model"] for r in rows}) == 1 and rows[0]["model"].startswith("onnx:")
    assert all(r["label"] in (*LABELS, UNCERTAIN) and set(r["probabilities"]) == set(LABELS) for r in rows)


def test_the_cli_default_threshold_is_the_classifiers():
    from trainer.cli import infer

    assert infer.DEFAULT_THRESHOLD == DEFAULT_THRESHOLD


# --------------------------------------------------------------------------------------------------------
# Bad files: one line each
# --------------------------------------------------------------------------------------------------------
def _bad_files(folder: Path, real_wav: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    files = {name: folder / f"{name}.wav" for name in ("corrupt", "empty", "short")}
    files["corrupt"].write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + rng.bytes(64))
    files["empty"].write_bytes(b"")
    sf.write(files["short"], 0.1 * rng.standard_normal(3200).astype(np.float32), 16000)  # 0.2 s
    return files


def test_bad_audio_files_give_one_line_each(exported, tmp_path, real_wav, capsys):
    out, _ = exported
    files = _bad_files(tmp_path, real_wav)
    assert rsc(["classify", str(out), *map(str, files.values()), str(real_wav)]) == 1
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 3 and "Traceback" not in captured.err
    for line, path in zip(errors, files.values()):
        assert line.startswith(str(path))
    assert "too short" in errors[2]
    assert real_wav.name in captured.out  # the good file is still classified


def test_eight_kilohertz_stereo_is_mixed_down_and_upsampled_with_one_note(exported, tmp_path, real_wav, capsys):
    out, _ = exported
    wave, rate = read_audio(real_wav)
    import soxr

    low = soxr.resample(wave, rate, 8000)
    stereo = tmp_path / "stereo8k.wav"
    sf.write(stereo, np.stack([low, 0.5 * low], axis=1), 8000)
    assert rsc(["classify", str(out), str(stereo), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        f"{stereo}: mixed 2 channels down to mono and upsampled from 8000 to 16000 Hz (nothing above 4000 Hz)"
    ]
    assert json.loads(captured.out)["recordings"][0]["cycles"]


def test_a_model_file_of_another_kind_gives_one_line(exported, trained, tmp_path, real_wav, capsys):
    out, _ = exported
    project, _ = trained
    no_card = tmp_path / "lonely.onnx"
    no_card.write_bytes(out.read_bytes())
    changed = tmp_path / "changed.onnx"
    changed.write_bytes(out.read_bytes()[:-10] + b"0123456789")
    card_path(changed).write_text(card_path(out).read_text())
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all")
    card = json.loads(card_path(out).read_text())
    from trainer.project import file_sha256

    card["model"]["sha256"] = file_sha256(garbage)
    card_path(garbage).write_text(json.dumps(card))
    cases = {
        str(real_wav): "no model card beside it",
        str(no_card): "no model card beside it",
        str(changed): "does not match its card",
        str(garbage): "onnxruntime cannot load it",
        str(project): "is a project: name a run",
        f"{project}:no-such-run": "no run 'no-such-run'",
        f"{project}:group:nobody": "has no finished run",
        str(tmp_path / "absent.onnx"): "no such model file",
    }
    for model, message in cases.items():
        assert rsc(["classify", model, str(real_wav)]) == 2, model
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err, (model, err)
    with pytest.raises(ClassifyError, match="threshold"):
        classify_file(OnnxModel(out), real_wav, threshold=1.5)


# --------------------------------------------------------------------------------------------------------
# Without torch
# --------------------------------------------------------------------------------------------------------
TORCH_FREE = """
import json, sys
sys.modules["torch"] = None  # any import of torch now fails
from trainer.cli import main
code = main(["classify", sys.argv[1], sys.argv[2], "--json", "--no-labels"])
loaded = sorted(m for m, v in sys.modules.items() if v is not None and m.split(".")[0] in ("torch", "transformers"))
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def test_onnx_classification_runs_with_torch_blocked(exported, real_wav):
    out, _ = exported
    result = subprocess.run([sys.executable, "-c", TORCH_FREE, str(out), str(real_wav)],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "loaded": []}
    cycles = json.loads(result.stdout)["recordings"][0]["cycles"]
    assert cycles and all(c["source"] in ("envelope", "fixed") for c in cycles)


# --------------------------------------------------------------------------------------------------------
# The numpy filterbank
# --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_cycles(icbhi_dir) -> np.ndarray:
    waves = []
    for wav in sorted((icbhi_dir / "ICBHI_final_database").glob("*.wav")):
        spans = [tuple(map(float, line.split()[:2])) for line in wav.with_suffix(".txt").read_text().split("\n") if line.strip()]
        samples, rate = read_audio(wav)
        waves.append(prepare_recording_cycles(samples, rate, spans, PrepSettings()))
    return np.concatenate(waves)


def test_numpy_filterbank_equals_the_torch_one_on_real_recordings(real_cycles):
    ours = kaldi_fbank_numpy(real_cycles)
    assert ours.dtype == np.float32 and ours.shape == (len(real_cycles), 798, 128)
    assert np.abs(ours - kaldi_fbank(real_cycles).numpy()).max() < 1e-5
    long = real_cycles[:4].reshape(-1)
    assert np.abs(kaldi_fbank_numpy(long, block_frames=300) - kaldi_fbank(long).numpy()).max() < 1e-5
    assert np.array_equal(kaldi_fbank_numpy(real_cycles[:3], workers=1), kaldi_fbank_numpy(real_cycles[:3], workers=2))


def test_numpy_filterbank_shapes_floor_and_refusals():
    wave = (0.1 * np.random.default_rng(0).standard_normal(128000)).astype(np.float32)
    assert kaldi_fbank_numpy(wave).shape == (798, 128)
    assert kaldi_fbank_numpy(wave[:399]).shape == (0, 128)
    assert kaldi_fbank_numpy(wave[:400]).shape == (1, 128)
    assert np.abs(kaldi_fbank_numpy(wave[:20000]) - kaldi_fbank(wave[:20000]).numpy()).max() < 1e-5
    silence = kaldi_fbank_numpy(np.zeros(16000, dtype=np.float32))
    assert np.all(silence == np.float32(np.log(KALDI_MEL_FLOOR)))
    with pytest.raises(TypeError, match="float"):
        kaldi_fbank_numpy(np.zeros(16000, dtype=np.int16))
    with pytest.raises(ValueError, match="shape"):
        kaldi_fbank_numpy(np.zeros((2, 2, 16000), dtype=np.float32))
