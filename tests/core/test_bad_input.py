"""Every kind of bad input gives one clear message naming the file and line, and costs nothing."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from trainer.data.folder import import_folder
from trainer.data.icbhi import import_icbhi
from trainer.data.report import ImportRefused
from trainer.project import Project

REPO = Path(__file__).resolve().parents[2]


def write_rec(folder: Path, stem: str, seconds=10.0, sr=4000, lines=("0.5\t2.0\t0\t0", "2.0\t4.0\t1\t0")):
    sf.write(folder / f"{stem}.wav", 0.1 * np.sin(np.arange(int(seconds * sr)) / 7.0).astype(np.float32), sr)
    (folder / f"{stem}.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    audio = root / "ICBHI_final_database"
    audio.mkdir(parents=True)
    write_rec(audio, "101_1b1_Al_sc_Meditron")
    write_rec(audio, "102_1b1_Ar_sc_Meditron")
    (root / "ICBHI_challenge_train_test.txt").write_text(
        "101_1b1_Al_sc_Meditron\ttrain\n102_1b1_Ar_sc_Meditron\ttest\n"
    )
    return root


def messages_about(report, name):
    return [m for m in report.messages if name in m.file]


def test_bad_annotation_lines(dataset, tmp_path):
    audio = dataset / "ICBHI_final_database"
    write_rec(
        audio,
        "103_1b1_Tc_sc_Meditron",
        lines=(
            "0.5\t2.0\t0\t0",
            "3.0\t2.5\t0\t1",  # start >= end
            "1.5\t2.5\t1\t1",  # overlaps line 1
            "8.0\t12.0\t0\t0",  # past the 10 s of audio
            "four\tfields\tnot\tnumbers",
            "2.5\t3.0\t0",
            "",
            "3.0\t4.0\t2\t0",  # flag not 0/1
            "4.0\t5.0\t1\t1",
        ),
    )
    with open(dataset / "ICBHI_challenge_train_test.txt", "a") as f:
        f.write("103_1b1_Tc_sc_Meditron\ttest\n")
    project = Project.create(tmp_path / "p.rsc")
    report = import_icbhi(project, dataset)
    errors = {(Path(m.file).name, m.line): m.message for m in report.errors}
    name = "103_1b1_Tc_sc_Meditron.txt"
    assert set(errors) == {(name, 2), (name, 3), (name, 4), (name, 5), (name, 6), (name, 8)}
    assert "at or before it starts" in errors[(name, 2)]
    assert "overlaps line 1" in errors[(name, 3)]
    assert "past the end of the audio" in errors[(name, 4)]
    rec = project.recording_by_name("103_1b1_Tc_sc_Meditron")
    assert [(c["start"], c["end"], c["label"]) for c in project.cycles(rec["id"])] == [(0.5, 2.0, 0), (4.0, 5.0, 3)]
    assert project.db["recordings"].count == 3  # the others went on


@pytest.mark.parametrize(
    "content, expect",
    [
        (b"", "empty file"),
        (b"this is a text file, not audio\n" * 20, "not a readable audio file"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00", "not a readable audio file"),  # truncated header
    ],
    ids=["empty", "text-named-wav", "corrupt-header"],
)
def test_unusable_wav_keeps_annotations_and_says_why(dataset, tmp_path, content, expect):
    audio = dataset / "ICBHI_final_database"
    (audio / "102_1b1_Ar_sc_Meditron.wav").write_bytes(content)
    project = Project.create(tmp_path / "p.rsc")
    report = import_icbhi(project, dataset)
    [error] = messages_about(report, "102_1b1_Ar_sc_Meditron.wav")
    assert expect in error.message
    rec = project.recording_by_name("102_1b1_Ar_sc_Meditron")
    assert rec["audio_status"] == "unreadable" and len(project.cycles(rec["id"])) == 2
    assert project.recording_by_name("101_1b1_Al_sc_Meditron")["audio_status"] == "ok"


def test_malformed_and_missing_split_file(dataset, tmp_path):
    split = dataset / "ICBHI_challenge_train_test.txt"
    split.write_text("101_1b1_Al_sc_Meditron\ttrain\n102_1b1_Ar_sc_Meditron validation\nnonsense\n")
    project = Project.create(tmp_path / "p.rsc")
    report = import_icbhi(project, dataset)
    lines = sorted(m.line for m in report.errors if m.file == str(split))
    assert lines == [2, 3]
    assert project.recording_by_name("101_1b1_Al_sc_Meditron")["split"] == "train"
    assert project.recording_by_name("102_1b1_Ar_sc_Meditron")["split"] is None
    assert any("not in the split file" in m.message for m in report.warnings)

    split.unlink()
    other = Project.create(tmp_path / "q.rsc")
    report = import_icbhi(other, dataset)
    assert any("split file ICBHI_challenge_train_test.txt not found" in m.message for m in report.errors)
    assert other.db["recordings"].count == 2
    # Giving the split file later fills the split in, without touching anything else.
    good = tmp_path / "split.txt"
    good.write_text("101_1b1_Al_sc_Meditron\ttrain\n102_1b1_Ar_sc_Meditron\ttest\n")
    report = import_icbhi(other, dataset, split=good)
    assert report.summary == {"updated": 2}
    assert {r["split"] for r in other.recordings()} == {"train", "test"}


def test_bad_input_loses_nothing_already_in_the_project(dataset, tmp_path):
    project = Project.create(tmp_path / "p.rsc")
    import_icbhi(project, dataset)
    cid = project.cycles()[0]["id"]
    project.update_cycle(cid, label="wheeze")
    snapshot = project.db.execute("SELECT * FROM cycles ORDER BY id").fetchall()
    audio = dataset / "ICBHI_final_database"
    (audio / "101_1b1_Al_sc_Meditron.txt").write_text("garbage\n0\t1\t0\n")
    (audio / "101_1b1_Al_sc_Meditron.wav").write_bytes(b"")
    report = import_icbhi(project, dataset)
    assert project.db.execute("SELECT * FROM cycles ORDER BY id").fetchall() == snapshot
    # The annotation file nothing can be read from is refused by name; its recording keeps what it had.
    assert report.summary == {"unchanged": 1, "refused": 1}
    [refusal] = messages_about(report, "101_1b1_Al_sc_Meditron.txt")
    assert refusal.line == 1 and "no line could be read" in refusal.message


def test_malformed_labels_csv(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    sf.write(folder / "a.wav", np.zeros(4000 * 6, dtype=np.float32), 4000)
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("file,start,end,label\na.wav,0.5,1.5,crackle\na.wav,1.5,x,normal\na.wav,2,3,squeak\nb.wav,1,2,normal\n")
    project = Project.create(tmp_path / "p.rsc")
    report = import_folder(project, folder, labels_csv=csv_path)
    errors = sorted((m.line, m.message) for m in report.errors)
    assert [line for line, _ in errors] == [3, 4, 5]
    assert "unknown label 'squeak'" in errors[1][1] and "no such audio file" in errors[2][1]
    [rec] = project.recordings()
    assert [(c["start"], c["label"]) for c in project.cycles(rec["id"])] == [(0.5, 1)]

    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("name,from,to\nb.wav,1,2\n")
    other = Project.create(tmp_path / "q.rsc")
    with pytest.raises(ImportRefused) as refused:
        import_folder(other, folder, labels_csv=bad_header)
    assert (refused.value.file, refused.value.line) == (str(bad_header), 1)
    assert "header must have" in refused.value.message and "nothing imported" in refused.value.message
    # Nothing is imported unlabelled; the import log says it failed, and why.
    assert other.db["recordings"].count == 0 and other.db["patients"].count == 0
    [logged] = other.query("SELECT status FROM imports")
    assert logged["status"] == "failed"


def test_missing_folder_is_refused(tmp_path):
    project = Project.create(tmp_path / "p.rsc")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        import_icbhi(project, tmp_path / "nope")
    assert project.db["recordings"].count == 0


def test_kill_9_during_import_leaves_a_valid_project_that_a_rerun_completes(tmp_path):
    """A real SIGKILL in the middle of an import of 60 recordings, then the same import again."""
    from trainer.data.synth import write_synthetic_dataset

    data = write_synthetic_dataset(tmp_path / "synth", recordings=60, seed=3, duration=8.0)
    path = tmp_path / "p.rsc"
    Project.create(path).close()
    marker = tmp_path / "halfway"
    script = (
        "import sys, pathlib\n"
        "from trainer.project import Project\n"
        "from trainer.data.icbhi import import_icbhi\n"
        "def progress(done, total):\n"
        "    if done == 25: pathlib.Path(sys.argv[3]).write_text('x')\n"
        "    if done > 25: import time; time.sleep(0.2)\n"
        "import_icbhi(Project.open(sys.argv[1]), sys.argv[2], progress=progress)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(path), str(data), str(marker)], cwd=REPO)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    with Project.open(path) as project:
        assert project.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        partial = project.db["recordings"].count
        assert 25 <= partial < 60
        # Whole recordings only: every recording has exactly the cycles of its annotation file.
        for rec in project.recordings():
            lines = [l for l in (data / "ICBHI_final_database" / f"{rec['name']}.txt").read_text().splitlines() if l]
            assert len(project.cycles(rec["id"])) == len(lines)
        assert project.query("SELECT status FROM imports")[0]["status"] == "running"  # visibly unfinished
        import_icbhi(project, data)
        assert project.db["recordings"].count == 60
        reference = Project.create(tmp_path / "ref.rsc")
        import_icbhi(reference, data)
        assert project.stats()["cycles"] == reference.stats()["cycles"]
        reference.close()


def test_float_audio_with_a_nan_is_refused_at_import_with_its_sample(dataset, tmp_path):
    audio = dataset / "ICBHI_final_database"
    x = 0.1 * np.sin(np.arange(40000) / 7.0)
    x[12345] = np.nan
    sf.write(audio / "101_1b1_Al_sc_Meditron.wav", x.astype(np.float32), 4000, subtype="FLOAT")
    project = Project.create(tmp_path / "p.rsc")
    report = import_icbhi(project, dataset)
    [error] = messages_about(report, "101_1b1_Al_sc_Meditron.wav")
    assert "sample 12345 (at 3.086 s) is not a number (NaN)" in error.message
    rec = project.recording_by_name("101_1b1_Al_sc_Meditron")
    assert rec["audio_status"] == "unreadable" and rec["sha256"] is None
    assert len(project.cycles(rec["id"])) == 2  # the annotations are kept; the audio is not used
    assert project.cycles(with_audio=True) == project.cycles(project.recording_by_name("102_1b1_Ar_sc_Meditron")["id"])


def test_check_says_unreadable_with_the_reason_for_files_that_exist(dataset, tmp_path, capsys):
    from trainer.cli import main as rsc

    audio = dataset / "ICBHI_final_database"
    (audio / "102_1b1_Ar_sc_Meditron.wav").write_bytes(b"this is a text file, not audio\n" * 20)
    path = tmp_path / "p.rsc"
    with Project.create(path) as project:
        import_icbhi(project, dataset)
    assert rsc(["check", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "1 ok, 1 unreadable"
    [line] = captured.err.strip().splitlines()
    assert line.startswith("102_1b1_Ar_sc_Meditron: audio unreadable (") and "not a readable audio file" in line


def _rewrite_in_place(path: Path, keep_mtime: bool = False) -> None:
    """Other samples, the same size: what an editor that saves over the file does."""
    stat = path.stat()
    data, sr = sf.read(path, dtype="float32")
    sf.write(path, (data[::-1] * 0.5).astype(np.float32), sr, subtype=sf.info(str(path)).subtype)
    assert path.stat().st_size == stat.st_size
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["new-mtime", "mtime-kept"])
def test_check_notices_an_in_place_edit_at_the_same_size_without_rehash(dataset, tmp_path, capsys, keep_mtime):
    from trainer.cli import main as rsc

    path = tmp_path / "p.rsc"
    with Project.create(path) as project:
        import_icbhi(project, dataset)
    assert rsc(["check", str(path)]) == 0 and capsys.readouterr().out.strip() == "2 ok"
    _rewrite_in_place(dataset / "ICBHI_final_database" / "101_1b1_Al_sc_Meditron.wav", keep_mtime)
    assert rsc(["check", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "1 changed, 1 ok"
    assert "101_1b1_Al_sc_Meditron: audio changed" in captured.err and "content differs" in captured.err
    with Project.open(path) as project:  # the import stamped it, so no full hash was needed
        rec = project.recording_by_name("102_1b1_Ar_sc_Meditron")
        assert rec["mtime_ns"] and len(rec["sample_hash"]) == 64


def test_a_first_check_stamps_recordings_imported_before_stamps(dataset, tmp_path):
    project = Project.create(tmp_path / "p.rsc")
    import_icbhi(project, dataset)
    with project.transaction():
        project.db.execute("UPDATE recordings SET mtime_ns = NULL, sample_hash = NULL")
    assert [project.verify_audio(rec) for rec in project.recordings()] == ["ok", "ok"]  # a full hash each
    stamped = project.recording_by_name("101_1b1_Al_sc_Meditron")
    assert stamped["mtime_ns"] and stamped["sample_hash"]
    _rewrite_in_place(dataset / "ICBHI_final_database" / "101_1b1_Al_sc_Meditron.wav", keep_mtime=True)
    assert project.verify_audio(stamped["id"]) == "changed"


def test_patients_are_written_with_their_recordings(dataset, tmp_path, monkeypatch):
    """A disk that fills up half-way (here: the second recording's insert fails) leaves no patient without a recording."""
    from trainer.project import ProjectError

    with open(dataset / "demographic_info.txt", "w") as handle:
        handle.write("".join(f"{pid} 50 M 25 NA NA\n" for pid in range(101, 400)))
    project = Project.create(tmp_path / "p.rsc")
    real = Project.add_recording
    calls = []

    def add_recording(self, fields, *args, **kwargs):
        calls.append(fields["name"])
        if len(calls) == 2:
            raise ProjectError("database or disk is full")
        return real(self, fields, *args, **kwargs)

    monkeypatch.setattr(Project, "add_recording", add_recording)
    with pytest.raises(ProjectError, match="disk is full"):
        import_icbhi(project, dataset)
    assert project.db["recordings"].count == 1
    assert [p["id"] for p in project.query("SELECT id, age FROM patients")] == ["101"]
    assert project.patient("101")["age"] == 50.0
    monkeypatch.setattr(Project, "add_recording", real)
    import_icbhi(project, dataset)
    assert [p["id"] for p in project.query("SELECT id FROM patients ORDER BY id")] == ["101", "102"]


@pytest.mark.parametrize("stop, status", [("cancel", "cancelled"), ("crash", "failed")])
def test_an_import_stopped_by_its_user_reads_cancelled_and_one_stopped_by_an_error_reads_failed(
    tmp_path, synth_dir, stop, status
):
    from trainer.data.icbhi import import_icbhi
    from trainer.interrupts import Cancelled

    def progress(*_):
        raise Cancelled("stop, please") if stop == "cancel" else RuntimeError("the disk went away")

    with Project.create(tmp_path / "p.rsc") as project:
        with pytest.raises((Cancelled, RuntimeError)):
            import_icbhi(project, synth_dir, progress=progress)
        assert project.query("SELECT status FROM imports")[0]["status"] == status
