"""Import of the real ICBHI files in ../shared/data/icbhi: exact counts and every published quirk."""

import json
import shutil

import numpy as np
import pytest

from trainer.cli import main as rsc
from trainer.audio import read_audio
from trainer.data.icbhi import import_icbhi
from trainer.project import Project

EXPECTED = {
    "train": {"normal": 2063, "crackle": 1215, "wheeze": 501, "both": 363, "total": 4142},
    "test": {"normal": 1579, "crackle": 649, "wheeze": 385, "both": 143, "total": 2756},
}


@pytest.fixture(scope="module")
def imported(icbhi_dir, tmp_path_factory):
    project = Project.create(tmp_path_factory.mktemp("icbhi") / "icbhi.rsc")
    report = import_icbhi(project, icbhi_dir / "ICBHI_final_database")
    yield project, report
    project.close()


def test_counts_match_the_published_table(imported):
    project, report = imported
    stats = project.stats()
    assert stats["cycles"]["train"] == EXPECTED["train"]
    assert stats["cycles"]["test"] == EXPECTED["test"]
    assert stats["cycles"]["all"]["total"] == 6898
    assert (stats["recordings"]["train"], stats["recordings"]["test"]) == (539, 381)
    assert stats["recordings"]["with_audio"] == 10 and stats["recordings"]["missing_audio"] == 910
    assert stats["patients"] == 126
    assert report.errors == []


def test_device_mismatch_in_split_file_is_matched_and_reported(imported):
    project, report = imported
    rec = project.recording_by_name("226_1b1_Pl_sc_LittC2SE")
    assert rec["split"] is not None and rec["device"] == "LittC2SE"
    assert len(project.cycles(rec["id"])) > 0
    [warning] = report.warnings
    assert warning.file.endswith("ICBHI_challenge_train_test.txt") and warning.line == 920
    assert "226_1b1_Pl_sc_Meditron" in warning.message and "LittC2SE" in warning.message


def test_patients_in_both_splits_and_metadata(imported):
    project, _ = imported
    for pid in ("156", "218"):
        splits = {r["split"] for r in project.recordings() if r["patient_id"] == pid}
        assert splits == {"train", "test"}
    p223 = project.patient("223")
    assert p223["age"] is None and p223["sex"] is None and p223["age_group"] is None
    p101 = project.patient("101")
    assert (p101["age"], p101["sex"], p101["age_group"], p101["diagnosis"]) == (3.0, "F", "pediatric", "URTI")
    assert p101["fold"] is not None
    rec = project.recording_by_name("107_2b3_Al_mc_AKGC417L")
    assert (rec["patient_id"], rec["recording_index"], rec["chest_location"], rec["acquisition_mode"], rec["device"]) == (
        "107", "2b3", "Al", "mc", "AKGC417L"
    )


def test_real_wavs_are_read_at_every_rate_and_depth(imported):
    project, _ = imported
    with_audio = [r for r in project.recordings() if r["audio_status"] == "ok"]
    assert len(with_audio) == 10
    formats = {(r["sample_rate"], r["subtype"]) for r in with_audio}
    assert {4000, 44100} <= {sr for sr, _ in formats}
    assert {"PCM_16", "PCM_24", "PCM_32"} <= {st for _, st in formats}
    for rec in with_audio:
        wave, sr = read_audio(project.audio_path(rec))
        assert sr == rec["sample_rate"] and len(wave) == rec["frames"]
        assert wave.dtype == np.float32 and 0.0 < np.abs(wave).max() <= 1.0
        assert np.std(wave) > 1e-4, f"{rec['name']} reads as silence"
        assert len(rec["sha256"]) == 64


def test_reimport_changes_nothing(imported, icbhi_dir):
    project, _ = imported
    before = project.db.execute("SELECT count(*), sum(label), sum(start) FROM cycles").fetchone()
    edits = project.db["cycle_edits"].count
    report = import_icbhi(project, icbhi_dir)  # the parent folder works too
    assert report.summary == {"unchanged": 920}
    assert project.db.execute("SELECT count(*), sum(label), sum(start) FROM cycles").fetchone() == before
    assert project.db["cycle_edits"].count == edits
    assert project.db["recordings"].count == 920


def test_missing_audio_is_attached_by_a_later_import(icbhi_dir, tmp_path):
    data = tmp_path / "icbhi" / "ICBHI_final_database"
    data.mkdir(parents=True)
    for name in ("ICBHI_challenge_train_test.txt", "demographic_info.txt", "patient_diagnosis.csv"):
        shutil.copy(icbhi_dir / name, data.parent / name)
    stem = "104_1b1_Al_sc_Litt3200"
    shutil.copy(icbhi_dir / "ICBHI_final_database" / f"{stem}.txt", data)
    project = Project.create(tmp_path / "p.rsc")
    import_icbhi(project, data)
    rec = project.recording_by_name(stem)
    assert rec["audio_status"] == "missing"
    cycle = project.cycles(rec["id"])[0]
    project.update_cycle(cycle["id"], label="both")  # a user's edit made before the audio came
    shutil.copy(icbhi_dir / "ICBHI_final_database" / f"{stem}.wav", data)
    report = import_icbhi(project, data)
    assert report.summary == {"attached": 1}
    rec = project.recording_by_name(stem)
    assert rec["audio_status"] == "ok" and rec["sample_rate"] == 4000
    assert project.db["recordings"].count == 1
    assert project.cycle(cycle["id"])["label"] == 3  # the edit survives
    project.close()


def test_cli_stats_json(imported, capsys):
    project, _ = imported
    assert rsc(["stats", str(project.path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    for split in ("train", "test"):
        assert stats["cycles"][split] == EXPECTED[split]
    assert stats["recordings"]["train"] == 539 and stats["recordings"]["missing_audio"] == 910
