import numpy as np
import pytest
import soundfile as sf

from trainer.data.folder import import_folder, patient_split
from trainer.project import Project


def tone(path, seconds=6.0, sr=16000, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.sin(np.arange(int(seconds * sr)) * 0.05)).astype(np.float32), sr, format=fmt)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "recordings"
    for patient in ("p1", "p2", "p3", "p4", "p5"):
        tone(root / patient / "chest.wav")
        tone(root / patient / "back.flac", fmt="FLAC")
    (root / "p1" / "chest.txt").write_text("0.2\t1.4\t1\t0\n1.4\t3.0\t0\t0\n")
    return root


def test_sidecars_patients_and_unlabelled(folder, tmp_path):
    project = Project.create(tmp_path / "p.rsc")
    report = import_folder(project, folder, seed=1)
    assert report.summary["added"] == 10 and report.summary["unlabelled"] == 9
    rec = project.recording_by_name("p1/chest")
    assert rec["patient_id"] == "p1" and rec["sample_rate"] == 16000
    assert [(c["start"], c["label"]) for c in project.cycles(rec["id"])] == [(0.2, 1), (1.4, 0)]
    assert project.recording_by_name("p3/back")["subtype"].startswith("PCM")
    # Patient-level split: both recordings of a patient share it, and both splits are used.
    by_patient = {}
    for r in project.recordings():
        by_patient.setdefault(r["patient_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_patient.values())
    assert {s for v in by_patient.values() for s in v} == {"train", "test"}
    assert import_folder(project, folder, seed=1).summary == {"unchanged": 10}


def test_csv_labels_with_split_and_patient(folder, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "file,start,end,crackle,wheeze,split,patient\n"
        "chest.wav,0.1,1.0,0,1,test,alice\n"
        "recordings/p2/chest.wav,1.0,2.0,1,1,test,alice\n"
        "back.flac,0.5,1.5,0,0,train,bob\n"
    )
    project = Project.create(tmp_path / "p.rsc")
    report = import_folder(project, folder / "p2", labels_csv=labels)
    rec = project.recording_by_name("chest")
    assert rec["split"] == "test" and rec["patient_id"] == "alice"
    assert [c["label"] for c in project.cycles(rec["id"])] == [2, 3]
    assert project.recording_by_name("back")["split"] == "train"
    assert report.errors == []


def test_patient_split_is_reproducible_and_patient_level():
    patients = [f"p{i}" for i in range(20)]
    a = patient_split(patients, seed=7, test_fraction=0.4)
    assert a == patient_split(list(reversed(patients)), seed=7, test_fraction=0.4)
    assert sum(v == "test" for v in a.values()) == 8
    assert a != patient_split(patients, seed=8, test_fraction=0.4)


def _cli(*argv):
    from trainer.cli import main

    return main([str(a) for a in argv])


def test_a_labels_csv_that_cannot_be_read_refuses_the_import_and_the_fixed_one_labels_it(folder, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    rows = [f"{p}/chest.wav,0.5,1.5,crackle" for p in ("p1", "p2", "p3", "p4", "p5")]
    labels.write_text("file;start;end;label\n" + "\n".join(r.replace(",", ";") for r in rows) + "\n")
    path = tmp_path / "p.rsc"
    Project.create(path).close()
    assert _cli("import", "folder", path, folder, "--labels", labels, "--quiet") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{labels}:1: header lacks" in err[0] and "semicolons" in err[0]
    with Project.open(path) as project:
        assert project.db["recordings"].count == 0 and project.db["cycles"].count == 0  # nothing unlabelled

    labels.write_text("file,start,end,label\n" + "\n".join(rows) + "\n")
    assert _cli("import", "folder", path, folder, "--labels", labels, "--quiet") == 0
    with Project.open(path) as project:
        labelled = [r for r in project.recordings() if r["name"].endswith("/chest")]
        assert [len(project.cycles(r["id"])) for r in labelled] == [1] * 5


def test_a_reimport_adds_cycles_a_fixed_row_gives_but_never_into_edited_recordings(folder, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "file,start,end,label\n"
        "p1/chest.wav,0.5,1.5,crackle\np1/chest.wav,1.5,2.5,squeak\n"  # line 3: a typo
        "p2/chest.wav,0.5,1.5,normal\np2/chest.wav,1.5,x,normal\n"  # line 5: a typo
    )
    project = Project.create(tmp_path / "p.rsc")
    report = import_folder(project, folder, labels_csv=labels)
    assert sorted(m.line for m in report.errors) == [3, 5]
    p1, p2 = project.recording_by_name("p1/chest"), project.recording_by_name("p2/chest")
    assert len(project.cycles(p1["id"])) == len(project.cycles(p2["id"])) == 1
    project.update_cycle(project.cycles(p2["id"])[0]["id"], label="wheeze")  # a user's edit of p2

    labels.write_text(labels.read_text().replace("squeak", "wheeze").replace(",x,", ",2.5,"))
    report = import_folder(project, folder, labels_csv=labels)
    assert report.summary == {"labelled": 1, "cycles": 1, "unchanged": 9}
    assert [(c["start"], c["label"], c["origin"]) for c in project.cycles(p1["id"])] == [
        (0.5, 1, "dataset"), (1.5, 2, "dataset")
    ]
    assert [h["action"] for h in project.cycle_history(recording_id=p1["id"])] == ["import", "import"]
    assert [(c["start"], c["label"]) for c in project.cycles(p2["id"])] == [(0.5, 2)]  # the edit wins
    [note] = [m for m in report.warnings if m.file == str(labels)]
    assert "1 of its cycles are not in the project" in note.message and "edited" in note.message
    # A third run has nothing left to add.
    assert import_folder(project, folder, labels_csv=labels).summary == {"unchanged": 10}


def test_a_file_name_that_is_not_utf8_is_named_and_the_others_imported(folder, tmp_path, capsys):
    import os

    bad = os.fsencode(folder / "p1") + b"/caf\xe9.wav"
    with open(bad, "wb") as handle:
        handle.write((folder / "p1" / "chest.wav").read_bytes())
    path = tmp_path / "p.rsc"
    assert _cli("import", "folder", path, folder, "--quiet") == 2
    captured = capsys.readouterr()
    assert "caf\\xe9.wav: error: the path is not valid UTF-8" in captured.err
    assert "added 10" in captured.out and "refused 1" in captured.out
    with Project.open(path) as project:
        assert project.db["recordings"].count == 10
        [logged] = project.query("SELECT message FROM import_messages WHERE level = 'error'")
        assert "not valid UTF-8" in logged["message"]


def test_two_files_that_make_one_recording_name_are_not_silently_merged(folder, tmp_path):
    tone(folder / "p1" / "chest.flac", fmt="FLAC")  # beside p1/chest.wav: both are recording "p1/chest"
    project = Project.create(tmp_path / "p.rsc")
    report = import_folder(project, folder)
    [refusal] = report.errors
    assert refusal.file.endswith("p1/chest.wav") and "same recording name 'p1/chest'" in refusal.message
    assert report.summary["added"] == 10 and report.refused == 1


def test_a_folder_whose_path_is_not_utf8_is_refused_in_one_line(folder, tmp_path, capsys):
    import os

    odd = os.fsdecode(os.fsencode(tmp_path) + b"/d\xe9")
    os.rename(folder, odd)
    path = tmp_path / "p.rsc"
    Project.create(path).close()
    assert _cli("import", "folder", path, odd, "--quiet") == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"rsc import: {tmp_path}/d\\xe9: the folder's path is not valid UTF-8")
    with Project.open(path) as project:
        assert project.db["recordings"].count == 0
        assert [row["status"] for row in project.query("SELECT status FROM imports")] == ["failed"]


def test_a_sidecar_the_labels_csv_overrides_is_named_and_the_projects_own_audio_skipped(folder, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,start,end,label\np1/chest.wav,0.5,1.5,wheeze\n")
    path = folder / "study.rsc"  # a project kept inside the folder it imports, with audio in its artifacts
    project = Project.create(path)
    tone(project.artifacts / "demo-audio" / "x.wav")
    report = import_folder(project, folder, labels_csv=labels)
    [ignored] = [m for m in report.warnings if m.file.endswith("p1/chest.txt")]
    assert "not read: the labels CSV has rows for p1/chest" in ignored.message
    assert [(c["start"], c["label"]) for c in project.cycles(project.recording_by_name("p1/chest")["id"])] == [(0.5, 2)]
    [skipped] = [m for m in report.warnings if m.file == str(project.artifacts)]
    assert "1 audio files inside the project's own artifacts folder" in skipped.message
    assert report.summary["added"] == 10
    project.close()


def test_recordings_imported_without_labels_get_them_from_a_later_import(folder, tmp_path):
    """What a project made before the fix holds after a labels CSV it could not read: the audio, unlabelled."""
    project = Project.create(tmp_path / "p.rsc")
    assert import_folder(project, folder).summary == {"added": 10, "cycles": 2, "unlabelled": 9}
    labels = tmp_path / "labels.csv"
    labels.write_text("file,start,end,label\n" + "".join(f"{p}/back.flac,0.5,1.5,crackle\n" for p in ("p1", "p2")))
    report = import_folder(project, folder, labels_csv=labels)
    assert report.summary == {"labelled": 2, "cycles": 2, "unchanged": 8}
    for patient in ("p1", "p2"):
        [cycle] = project.cycles(project.recording_by_name(f"{patient}/back")["id"])
        assert (cycle["start"], cycle["label"], cycle["origin"], cycle["source_line"]) == (0.5, 1, "dataset", 2 + (patient == "p2"))
