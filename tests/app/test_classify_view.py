"""Classify view: a real ICBHI recording classified by an exported tiny model gives what `classify_file` gives,
the threshold re-labels from the kept probabilities, a bad file fails alone in its row, results stored in a
project show up there, and the classify-only edition starts and classifies with torch blocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO
from PySide6.QtCore import QSettings

from rscapp.classify import ClassifyView
from rscapp.model import ProjectModel
from trainer.infer.classify import UNCERTAIN, OnnxModel, classify_file
from trainer.project import Project, stored_classifications
from trainer.vocab import LABELS

DONE_MS = 60_000  # a 20 s recording takes well under a second; a busy shared machine gets slack


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    """An untrained micro cnn6-tiny exported once for the module (its probabilities are all we compare)."""
    import torch

    from trainer.infer.export import export_model
    from trainer.models import create_model

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("classify-model") / "micro.onnx"
    export_model(create_model("cnn6-tiny", channels=[2, 4, 8, 16]), out)
    return out


@pytest.fixture(scope="module")
def real_wavs(icbhi_dir) -> list[Path]:
    return sorted((icbhi_dir / "ICBHI_final_database").glob("*.wav"))[:2]


@pytest.fixture
def view(qtbot):
    model = ProjectModel()
    widget = ClassifyView(model)
    qtbot.addWidget(widget)
    yield widget
    if widget.task is not None:
        widget.task.cancel()
        widget.task.wait(10)
    if model.project is not None:
        project = model.project
        model.set_project(None)
        project.close()


def classify_and_wait(qtbot, view, rows=None):
    task = view.classify(rows)
    assert task is not None
    qtbot.waitUntil(lambda: view.task is None, timeout=DONE_MS)
    return task


def labels_for(result, threshold):
    return [c.predicted if c.confidence >= threshold else UNCERTAIN for c in result.cycles]


def test_a_real_recording_gets_the_cycles_and_probabilities_classify_file_gives(qtbot, view, onnx_model, real_wavs):
    assert view.chooser.load_onnx(onnx_model)
    assert "onnx:cnn6-tiny@" in view.chooser.summary.text() and "normal, crackle, wheeze, both" in view.chooser.summary.text()
    view.add_files(real_wavs[:1])
    classify_and_wait(qtbot, view)
    expected = classify_file(OnnxModel(onnx_model), real_wavs[0], view.threshold.value())
    shown = view.files.results[0]
    assert len(shown.cycles) == len(expected.cycles) == len(real_wavs[0].with_suffix(".txt").read_text().split())  // 4
    for ours, theirs in zip(shown.cycles, expected.cycles, strict=True):
        assert (ours.start, ours.end, ours.annotated) == (theirs.start, theirs.end, theirs.annotated)
        assert max(abs(ours.probabilities[k] - theirs.probabilities[k]) for k in theirs.probabilities) < 1e-5
    # The selected recording is drawn: one band and one table row per cycle, the spectrogram once computed.
    assert view.files.current_row() == 0 and view.table.rowCount() == len(expected.cycles)
    assert len(view.plot.bands) == len(expected.cycles)
    assert view.table.column_values("p(crackle)") == [f"{c.probabilities['crackle']:.3f}" for c in expected.cycles]
    qtbot.waitUntil(lambda: view.plot.spectrogram is not None, timeout=DONE_MS)
    assert view.plot.spectrogram.t1 == pytest.approx(expected.duration, abs=0.1)
    assert view.files.status_text(0).startswith(f"{len(expected.cycles)} cycles")


def test_the_threshold_relabels_from_the_kept_probabilities_without_classifying_again(qtbot, view, onnx_model,
                                                                                    real_wavs, monkeypatch):
    view.chooser.load_onnx(onnx_model)
    view.add_files(real_wavs)
    classify_and_wait(qtbot, view)
    view.files.selectRow(1)
    result = view.files.results[1]
    before = [dict(c.probabilities) for c in result.cycles]

    def refuse(*_args):
        raise AssertionError("the model ran again")

    monkeypatch.setattr(OnnxModel, "logits", refuse)
    confidences = sorted(c.confidence for c in result.cycles)
    middle = round(confidences[len(confidences) // 2], 2)  # some cycles above it, some below
    for threshold in (0.0, middle, 1.0):
        view.threshold.setValue(threshold)
        assert view.threshold_slider.value() == round(threshold * 100)
        assert view.table.column_values("label") == labels_for(result, threshold)
        uncertain = labels_for(result, threshold).count(UNCERTAIN)
        assert f"{uncertain} uncertain" in view.files.status_text(1)
        # The other recording is re-labelled too, and the report sees the threshold in force.
        assert [c.label for c in view.files.results[0].cycles] == labels_for(view.files.results[0], threshold)
        assert result.threshold == threshold
    assert 0 < labels_for(result, middle).count(UNCERTAIN) < len(result.cycles) or len(set(confidences)) == 1
    assert [c.probabilities for c in result.cycles] == before
    view.threshold_slider.setValue(35)
    assert view.threshold.value() == pytest.approx(0.35)
    assert view.table.column_values("label") == labels_for(result, 0.35)


def test_bad_files_show_their_one_line_error_and_the_others_are_classified(qtbot, view, onnx_model, real_wavs,
                                                                          tmp_path, demo_copy):
    rng = np.random.default_rng(0)
    corrupt, empty, short = tmp_path / "corrupt.wav", tmp_path / "empty.wav", tmp_path / "short.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + rng.bytes(64))
    empty.write_bytes(b"")
    sf.write(short, 0.1 * rng.standard_normal(3200).astype(np.float32), 16000)  # 0.2 s
    view.chooser.load_onnx(onnx_model)
    view.add_files([corrupt, real_wavs[0], empty, onnx_model, short, real_wavs[1]])
    classify_and_wait(qtbot, view)
    for row, path in ((0, corrupt), (2, empty), (3, onnx_model), (4, short)):
        error = view.files.errors[row]
        assert error and error.startswith(str(path)) and "\n" not in error and "Traceback" not in error, error
        assert view.files.results[row] is None and path.name in view.files.status_text(row)
    assert "too short" in view.files.errors[4]
    for row in (1, 5):
        assert view.files.errors[row] is None and view.files.results[row].cycles
    # A model file of another kind: a project given as a model says how to name a run, and no model is kept.
    project = demo_copy(tmp_path)
    assert not view.chooser.load_onnx(project)
    assert view.chooser.model is None and "is a project: name a run" in view.chooser.summary.text()
    assert not view.classify_button.isEnabled()


def test_reports_are_written_for_the_selected_recording_at_the_threshold_in_force(qtbot, view, onnx_model,
                                                                                  real_wavs, tmp_path):
    import csv

    view.chooser.load_onnx(onnx_model)
    view.add_files(real_wavs[:1])
    classify_and_wait(qtbot, view)
    assert view.csv_button.isEnabled() and view.html_button.isEnabled()
    view.threshold.setValue(0.0)
    result = view.selected_result()
    rows = list(csv.DictReader(view.export_report("csv", tmp_path / "r.csv").open()))
    assert [r["label"] for r in rows] == [c.predicted for c in result.cycles]
    assert [float(r["p_wheeze"]) for r in rows] == pytest.approx([c.probabilities["wheeze"] for c in result.cycles])
    assert {r["threshold"] for r in rows} == {"0.0"} and {r["model"] for r in rows} == {result.model}
    page = view.export_report("html", tmp_path / "r.html").read_text()
    assert real_wavs[0].name in page and "data:image/png;base64," in page and "cnn6-tiny" in page
    assert page.count("<tr") >= len(result.cycles)
    assert view.export_report("csv", tmp_path / "no-such-folder" / "r.csv") is None  # a message, no exception


def test_cancel_stops_before_the_next_recording_and_says_so(qtbot, view, onnx_model, icbhi_dir):
    wavs = sorted((icbhi_dir / "ICBHI_final_database").glob("*.wav"))[:6]
    view.chooser.load_onnx(onnx_model)
    view.add_files(wavs)
    task = view.classify()
    task.cancel()
    qtbot.waitUntil(lambda: view.task is None, timeout=DONE_MS)
    assert task.state == "cancelled"
    states = [view.files.status_text(row) for row in range(len(wavs))]
    assert states[-1] == "cancelled" and not any("classifying" in s for s in states)
    assert all(s == "cancelled" or view.files.results[row] is not None for row, s in enumerate(states))
    assert view.classify_button.isEnabled() and not view.cancel_button.isEnabled()


def test_results_stored_in_a_demo_project_appear_there_with_its_cycles_as_annotations(qtbot, view, onnx_model,
                                                                                      tmp_path, demo_copy):
    path = demo_copy(tmp_path)
    project = Project.open(path)
    view.model.set_project(project)
    assert view.add_project_button.isEnabled() and not view.store_button.isHidden()
    ids = [r["id"] for r in project.recordings()[:2]]
    view.chooser.load_onnx(onnx_model)
    view.project_side.add_recordings(ids)
    classify_and_wait(qtbot, view)
    assert view.store_button.isEnabled()
    view.threshold.setValue(0.0)  # every prediction confident: each differs or agrees with its label
    results = list(view.files.results)
    for rid, result in zip(ids, results, strict=True):
        cycles = project.cycles(recording_id=rid)
        assert [(round(c["start"], 3), round(c["end"], 3)) for c in cycles] == \
               [(round(c.start, 3), round(c.end, 3)) for c in result.cycles]
        assert [c.annotated for c in result.cycles] == [LABELS[c["label"]] for c in cycles]
    view.files.selectRow(0)
    assert view.table.column_values("disagrees") == ["yes" if c.predicted != c.annotated else ""
                                                     for c in results[0].cycles]
    assert view.project_side.store() == 2
    with Project.open(path) as other:  # another connection: the rows are committed
        for rid, result in zip(ids, results):
            rows = stored_classifications(other, recording_id=rid)
            assert len(rows) == len(result.cycles) and {r["model"] for r in rows} == {result.model}
            assert [r["label"] for r in rows] == [c.label for c in result.cycles]
            assert all(r["threshold"] == 0.0 for r in rows)
            for row, cycle in zip(rows, result.cycles):
                assert row["probabilities"] == pytest.approx(cycle.probabilities)
    # Storing again replaces them rather than adding a second set.
    assert view.project_side.store() == 2
    assert len(stored_classifications(project, recording_id=ids[0])) == len(results[0].cycles)
    # A relabel through the model (as Listen makes it) marks that recording's result as out of date.
    first = project.cycles(recording_id=ids[1])[0]
    view.model.update_cycle(first["id"], crackle=1 - first["crackle"])
    assert "classify again" in view.files.status_text(1) and "classify again" not in view.files.status_text(0)
    classify_and_wait(qtbot, view, [1])
    assert "classify again" not in view.files.status_text(1)
    assert view.files.results[1].cycles[0].annotated == LABELS[project.cycles(recording_id=ids[1])[0]["label"]]


def test_a_group_without_finished_runs_says_so_in_one_line(qtbot, view, tmp_path, demo_copy):
    project = Project.open(demo_copy(tmp_path))
    view.model.set_project(project)
    task = view.chooser.load_runs(group="nobody")
    qtbot.waitUntil(lambda: view.chooser.loading is None, timeout=DONE_MS)
    assert task.state == "failed" and view.chooser.model is None
    assert "has no finished run" in view.chooser.summary.text()


def test_the_main_window_has_a_classify_tab(qtbot, tmp_path):
    from rscapp.mainwindow import MainWindow

    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), data_dir=tmp_path)
    qtbot.addWidget(window)
    assert window.tabs.tabText(window.tabs.count() - 1) == "Classify"
    window.act_classify.trigger()
    assert window.tabs.currentWidget() is window.classify
    assert window.act_classify.shortcut().toString() == "Ctrl+5" and window.act_library.shortcut().toString() == "Ctrl+1"


TORCH_FREE = """
import json, sys, time
sys.modules["torch"] = None  # any import of torch now fails
from PySide6.QtWidgets import QApplication
from rscapp.classify.app import build_window
app = QApplication([])
window = build_window(sys.argv[1], sys.argv[2:])
window.show()
task = window.view.classify()
deadline = time.time() + 60
while window.view.task is not None and time.time() < deadline:
    app.processEvents()
    time.sleep(0.01)
result = window.view.files.results[0]
loaded = sorted(m for m, v in sys.modules.items() if v is not None and m.split(".")[0] in ("torch", "transformers"))
print(json.dumps({"loaded": loaded, "cycles": [c.probabilities for c in result.cycles], "rows": window.view.table.rowCount()}))
window.close()
window.deleteLater()
app.processEvents()
"""


def test_the_classify_only_edition_starts_and_classifies_with_torch_blocked(onnx_model, real_wavs):
    env = os.environ | {"QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", TORCH_FREE, str(onnx_model), str(real_wavs[0])],
                          capture_output=True, text=True, cwd=REPO, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    expected = classify_file(OnnxModel(onnx_model), real_wavs[0])
    assert report["loaded"] == [] and report["rows"] == len(expected.cycles)
    for ours, theirs in zip(report["cycles"], expected.cycles, strict=True):
        assert max(abs(ours[k] - theirs.probabilities[k]) for k in ours) < 1e-5


def test_the_classify_only_edition_says_how_long_it_took_to_start(onnx_model):
    env = os.environ | {"QT_QPA_PLATFORM": "offscreen"}
    blocked = "import sys; sys.modules['torch'] = None; from rscapp.classify.app import main; sys.exit(main(sys.argv[1:]))"
    start = subprocess.run([sys.executable, "-c", blocked, str(onnx_model), "--quit-after-start"],
                           capture_output=True, text=True, cwd=REPO, timeout=60, env=env)
    assert start.returncode == 0, start.stderr
    seconds = float(start.stdout.strip().splitlines()[-1])
    assert 0.0 < seconds < 30.0  # the packaging measures it against its 2 s goal; here it must only be told
