"""Classifications stored in the project with the model's identity and version, the schema 5 migration
of a version 4 file, and the per-recording report: a CSV and one self-contained HTML page."""

from __future__ import annotations

import base64
import csv
import dataclasses
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import sqlite_utils
import torch
from conftest import REPO

from trainer import __version__
from trainer.cli import main as rsc
from trainer.infer import classify
from trainer.infer.classify import OnnxModel, classify_file
from trainer.infer.export import export_model
from trainer.infer.png import SIGNATURE
from trainer.infer.report import CLASS_COLOURS, DISAGREE_COLOUR, GAP, SPECTROGRAM_HEIGHT, write_csv_report, write_html_report
from trainer.models import create_model
from trainer.project import Project, ProjectError, file_sha256, store_classification, stored_classifications
from trainer.project import classifications, schema
from trainer.vocab import LABELS

MICRO = {"channels": [2, 4, 8, 16]}


@pytest.fixture(scope="module")
def real_wav(icbhi_dir) -> Path:
    return sorted((icbhi_dir / "ICBHI_final_database").glob("*.wav"))[0]


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory) -> Path:
    """An untrained micro cnn6-tiny exported with its card: what it says is arbitrary, how it is kept is not."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("model") / "micro.onnx"
    export_model(create_model("cnn6-tiny", **MICRO).eval(), out)
    return out


@pytest.fixture(scope="module")
def model(onnx_path) -> OnnxModel:
    return OnnxModel(onnx_path)


@pytest.fixture(scope="module")
def result(model, real_wav):
    # At the median confidence about half the cycles are uncertain and half confident (and, from an
    # untrained model, mostly not the annotated class): every kind of band is drawn.
    confidences = sorted(c.confidence for c in classify_file(model, real_wav, threshold=0.0).cycles)
    return classify_file(model, real_wav, threshold=confidences[len(confidences) // 2])


def _demo_recording(project: Project) -> dict:
    return next(r for r in project.recordings() if r["audio_status"] == "ok")


# --------------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------------
def test_stored_rows_carry_the_model_its_version_the_origin_and_the_recording(tmp_path, demo_copy, model, onnx_path,
                                                                              result):
    with Project.open(demo_copy(tmp_path)) as project:
        rec = _demo_recording(project)
        ours = classify_file(model, project.resolve_path(rec["path"]), labels=None, method="fixed")
        ids = store_classification(project, ours)
        outside = store_classification(project, result)
        rows = stored_classifications(project, recording_id=rec["id"])
        assert [r["id"] for r in rows] == ids and len(ids) == len(ours.cycles) > 0
        for row, cycle in zip(rows, ours.cycles, strict=True):
            assert row["model"] == model.identity and row["model_version"] == file_sha256(onnx_path)
            assert row["origin"] == "model" and row["recording_id"] == rec["id"] and row["threshold"] == 0.6
            assert (row["start"], row["end"], row["label"]) == (cycle.start, cycle.end, cycle.label)
            assert row["probabilities"] == cycle.probabilities
        # A file outside the project has no recording; it is found by its path.
        away = stored_classifications(project, audio_path=result.path)
        assert [r["id"] for r in away] == outside and {r["recording_id"] for r in away} == {None}
        assert {r["label"] for r in away} <= {*LABELS, "uncertain"} and len(away) == len(result.cycles)


def test_storing_again_replaces_the_same_versions_rows_and_keeps_another_versions(tmp_path, demo_copy, result):
    with Project.open(demo_copy(tmp_path)) as project:
        first = store_classification(project, result)
        again = store_classification(project, result)
        assert len(stored_classifications(project, audio_path=result.path)) == len(result.cycles)
        assert len(again) == len(first) and len(stored_classifications(project)) == len(first)
        retrained = dataclasses.replace(result, version="f" * 64, threshold=0.9)
        store_classification(project, retrained)
        rows = stored_classifications(project, model=result.model)
        assert len(rows) == 2 * len(result.cycles)
        assert {(r["model_version"], r["threshold"]) for r in rows} == {(result.version, result.threshold), ("f" * 64, 0.9)}
        # A result that cannot be stored leaves the rows it would have replaced.
        broken = dataclasses.replace(result, cycles=[*result.cycles[:-1], dataclasses.replace(result.cycles[-1], label="rale")])
        with pytest.raises(ProjectError, match="'rale' is not one of"):
            store_classification(project, broken)
        with pytest.raises(ProjectError, match="no recording 9999"):
            store_classification(project, result, recording_id=9999)
        assert [r["id"] for r in stored_classifications(project, model=result.model)] == [r["id"] for r in rows]


def test_the_project_layer_says_uncertain_in_the_classifiers_word():
    assert classifications.UNCERTAIN == classify.UNCERTAIN


def _version_4_file(path: Path) -> Path:
    """A project as version 4 made it: the first four migrations, and rows the way that code stored them."""
    db = sqlite_utils.Database(path)
    with db.conn:
        for migration in schema.MIGRATIONS[:4]:
            migration(db)
        db.execute("INSERT INTO meta(key, value) VALUES ('schema_version', '4')")
        db.execute("INSERT INTO recordings(id, name, path) VALUES (1, '101_1b1_Al_sc_Meditron', 'audio/101.wav')")
        for run_id, audio, label in (("onnx:abc@0123456789ab", "audio/101.wav", 2), ("run:r7", "../elsewhere.wav", None)):
            db.execute('INSERT INTO classifications(run_id, audio_path, start, "end", probabilities, label, created_at) '
                       "VALUES (?, ?, 0.5, 2.5, ?, ?, '2026-01-01T00:00:00')",
                       [run_id, audio, '{"normal": 0.1, "crackle": 0.2, "wheeze": 0.6, "both": 0.1}', label])
    db.close()
    return path


def test_a_version_4_projects_classifications_gain_model_origin_and_recording_when_opened(tmp_path):
    path = _version_4_file(tmp_path / "v4.rsc")
    with Project.open(path) as project:
        assert project.schema_version == schema.SCHEMA_VERSION == 5
        rows = {r["model"]: r for r in stored_classifications(project)}
        assert set(rows) == {"onnx:abc@0123456789ab", "run:r7"}
        assert rows["onnx:abc@0123456789ab"]["recording_id"] == 1 and rows["run:r7"]["recording_id"] is None
        assert rows["onnx:abc@0123456789ab"]["label"] == "wheeze" and rows["run:r7"]["label"] == "uncertain"
        assert all(r["origin"] == "model" and r["model_version"] is None and r["threshold"] is None for r in rows.values())
        kept = project.query("SELECT run_id, model FROM classifications ORDER BY id")
        assert all(r["run_id"] == r["model"] for r in kept)  # the old column stays, its values copied


# --------------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------------
def _png_of(page: str) -> bytes:
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 1
    return base64.b64decode(images[0])


def _decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the rows of an 8-bit RGB PNG, each chunk's CRC checked."""
    assert data[:8] == SIGNATURE
    at, chunks = 8, []
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        at += 12 + length
    assert [k for k, _ in chunks][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = 1 + 3 * width
    assert len(raw) == height * stride
    rows = [raw[y * stride : (y + 1) * stride] for y in range(height)]
    assert all(row[0] == 0 for row in rows)  # filter "none"
    return width, height, [row[1:] for row in rows]


def test_the_html_report_is_one_self_contained_page_with_a_row_per_cycle(tmp_path, model, result):
    page_path = write_html_report(result, tmp_path / "report.html", model.card)
    page = page_path.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', page)) and "<script" not in page
    assert f'<meta name="generator" content="RSC Studio {__version__}">' in page
    assert f"<title>{Path(result.path).name}: classified by {result.model}</title>" in page
    body = page.split("<h2>Cycles</h2>")[1].split("</tbody>")[0]
    assert body.count("<tr") == len(result.cycles) + 1  # and the header
    assert body.count('class="disagrees"') == sum(c.disagrees for c in result.cycles)
    model_table = page.split("<h2>Model</h2>")[1]
    assert "Sample rate</th><td>16000 Hz" in model_table and ", ".join(LABELS) in model_table
    assert model.version in model_table and "num_mel_bins=128" in model_table


def test_the_reports_spectrogram_decodes_and_shows_each_cycle_in_its_class_colour(tmp_path, model, result):
    page = write_html_report(result, tmp_path / "report.html", model.card).read_text(encoding="utf-8")
    width, height, rows = _decode_png(_png_of(page))
    assert f'width="{width}" height="{height}"' in page and height > SPECTROGRAM_HEIGHT
    strip_row, top_row = rows[SPECTROGRAM_HEIGHT + GAP + 10], rows[SPECTROGRAM_HEIGHT + GAP + 1]
    spans = [(c.start, c.end) for c in result.cycles]
    checked = []
    for cycle in result.cycles:
        middle = (cycle.start + cycle.end) / 2
        if sum(a <= middle < b for a, b in spans) > 1:
            continue  # where annotated cycles overlap, the later one is drawn on top
        x = int(middle / result.duration * width)
        assert tuple(strip_row[3 * x : 3 * x + 3]) == CLASS_COLOURS[cycle.label]
        top = DISAGREE_COLOUR if cycle.disagrees else CLASS_COLOURS[cycle.label]
        assert tuple(top_row[3 * x : 3 * x + 3]) == top
        checked.append(cycle)
    assert len(checked) >= len(result.cycles) // 2
    assert {c.label == "uncertain" for c in checked} == {True, False} and any(c.disagrees for c in checked)
    assert len(set(rows[SPECTROGRAM_HEIGHT // 2])) > 30  # the spectrogram is not one flat colour


def test_every_string_of_the_page_is_escaped(tmp_path, model, real_wav):
    hostile = tmp_path / "<b>lung & 'sounds'.wav"
    shutil.copy(real_wav, hostile)
    shutil.copy(real_wav.with_suffix(".txt"), hostile.with_suffix(".txt"))
    page = write_html_report(classify_file(model, hostile), tmp_path / "r.html", model.card).read_text(encoding="utf-8")
    assert "<b>lung" not in page and "&lt;b&gt;lung &amp; &#x27;sounds&#x27;.wav" in page


def test_the_csv_report_round_trips(tmp_path, result):
    path = write_csv_report(result, tmp_path / "report.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(result.cycles)
    for index, (row, cycle) in enumerate(zip(rows, result.cycles, strict=True), 1):
        assert (int(row["cycle"]), float(row["start"]), float(row["end"])) == (index, cycle.start, cycle.end)
        assert (row["source"], row["label"], row["predicted"]) == (cycle.source, cycle.label, cycle.predicted)
        assert {k: float(row[f"p_{k}"]) for k in LABELS} == cycle.probabilities
        assert float(row["confidence"]) == cycle.confidence and row["annotated"] == (cycle.annotated or "")
        assert int(row["disagrees"]) == cycle.disagrees
        assert (row["model"], row["model_version"], float(row["threshold"])) == (result.model, result.version, result.threshold)


# --------------------------------------------------------------------------------------------------------
# rsc classify --report
# --------------------------------------------------------------------------------------------------------
def test_rsc_classify_writes_a_report_per_recording_and_refuses_a_file_for_the_folder(tmp_path, onnx_path, real_wav,
                                                                                       capsys):
    folder = tmp_path / "reports" / "today"
    for _ in range(2):  # a second run replaces the same stem's reports
        assert rsc(["classify", str(onnx_path), str(real_wav), "--report", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == [f"{real_wav.stem}.csv", f"{real_wav.stem}.html"]
    page = (folder / f"{real_wav.stem}.html").read_text(encoding="utf-8")
    lines = real_wav.with_suffix(".txt").read_text().strip().splitlines()
    assert page.split("</tbody>")[0].count("<tr") == len(lines) + 1
    assert len((folder / f"{real_wav.stem}.csv").read_text().splitlines()) == len(lines) + 1
    capsys.readouterr()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    twin = tmp_path / "other" / real_wav.name
    twin.parent.mkdir()
    shutil.copy(real_wav, twin)
    for extra, message in (([str(real_wav), "--report", str(a_file)], "is a file, not a folder"),
                           ([str(real_wav), str(twin), "--report", str(folder)], "would both write")):
        assert rsc(["classify", str(onnx_path), *extra]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert a_file.read_text() == "keep me"


TORCH_FREE_REPORT = """
import sys
sys.modules["torch"] = None  # any import of torch now fails
from trainer.cli import main
code = main(["classify", sys.argv[1], sys.argv[2], "--report", sys.argv[3]])
loaded = sorted(m for m, v in sys.modules.items() if v is not None and m.split(".")[0] in ("torch", "transformers"))
print(code, loaded)
"""


def test_the_report_is_written_with_torch_blocked(tmp_path, onnx_path, real_wav):
    out = subprocess.run([sys.executable, "-c", TORCH_FREE_REPORT, str(onnx_path), str(real_wav), str(tmp_path)],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0 []"
    page = (tmp_path / f"{real_wav.stem}.html").read_text(encoding="utf-8")
    width, height, _ = _decode_png(_png_of(page))
    assert width >= 300 and (tmp_path / f"{real_wav.stem}.csv").is_file()
