import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from conftest import write_sqlite
import soundfile as sf

from trainer.project import APPLICATION_ID, SCHEMA_VERSION, Project, ProjectError
from trainer.vocab import flags_of, label_of


@pytest.fixture
def project(tmp_path):
    wav = tmp_path / "audio" / "rec.wav"
    wav.parent.mkdir()
    sf.write(wav, np.zeros(8000 * 10, dtype=np.float32), 8000)
    project = Project.create(tmp_path / "p.rsc")
    from trainer.data.ingest import probe_audio
    from trainer.data.report import ImportReport

    fields = {"name": "rec", "split": "train", **probe_audio(wav, ImportReport("t", "t"))}
    project.rec_id, _ = project.add_recording(fields, [], audio=wav)
    yield project
    project.close()


def test_labels_round_trip():
    assert [label_of(c, w) for c, w in [(0, 0), (1, 0), (0, 1), (1, 1)]] == [0, 1, 2, 3]
    assert flags_of("both") == (1, 1) and flags_of(2) == (0, 1) and flags_of("Crackle") == (1, 0)
    with pytest.raises(ValueError):
        flags_of("squawk")


def test_new_project_has_schema_wal_and_artifacts(tmp_path):
    path = tmp_path / "study.rsc"
    with Project.create(path) as project:
        assert project.schema_version == SCHEMA_VERSION
        assert project.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert project.artifacts.is_dir() and project.artifacts.name == "study.rsc.d"
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(path)
    with Project.open(path) as again:
        assert again.schema_version == SCHEMA_VERSION


def test_opening_a_non_project_is_a_clear_error(tmp_path):
    bogus = tmp_path / "notes.rsc"
    bogus.write_text("this is not a database")
    with pytest.raises(ProjectError, match="not an RSC Studio project"):
        Project.open(bogus)
    empty = tmp_path / "empty.rsc"
    empty.write_bytes(b"")
    with pytest.raises(ProjectError, match="empty file"):
        Project.open(empty)
    with pytest.raises(ProjectError, match="no such project file"):
        Project.open(tmp_path / "absent.rsc")


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.rsc"
    Project.create(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(ProjectError, match="newer RSC Studio"):
        Project.open(path)


def test_edits_write_history_and_refuse_overlaps(project):
    a = project.add_cycle(project.rec_id, 1.0, 2.0, 0, 0)
    b = project.add_cycle(project.rec_id, 2.0, 3.5, 1, 0)  # a shared boundary is not an overlap
    with pytest.raises(ProjectError, match="overlap"):
        project.add_cycle(project.rec_id, 1.5, 2.5)
    with pytest.raises(ProjectError, match="overlap"):
        project.update_cycle(a, end=2.2)
    with pytest.raises(ProjectError, match="past the end"):
        project.add_cycle(project.rec_id, 9.0, 10.5)
    with pytest.raises(ProjectError, match="end after it starts"):
        project.add_cycle(project.rec_id, 5.0, 5.0)
    project.update_cycle(a, label="wheeze", author="dr-k")
    row = project.cycle(a)
    assert (row["crackle"], row["wheeze"], row["label"], row["edited"]) == (0, 1, 2, 1)
    project.delete_cycle(b)
    assert [c["id"] for c in project.cycles(project.rec_id)] == [a]
    assert project.cycle(b)["deleted"] == 1  # kept: outputs keyed by its id stay valid
    project.restore_cycle(b)
    history = project.cycle_history(cycle_id=a)
    assert [h["action"] for h in history] == ["create", "update"]
    assert history[1]["before"]["label"] == 0 and history[1]["after"]["label"] == 2
    assert history[1]["author"] == "dr-k" and history[1]["at"]
    assert [h["action"] for h in project.cycle_history(cycle_id=b)] == ["create", "delete", "restore"]


def test_history_is_append_only(project):
    cid = project.add_cycle(project.rec_id, 1.0, 2.0)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        project.db.execute("UPDATE cycle_edits SET author = 'x' WHERE cycle_id = ?", [cid])
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        project.db.execute("DELETE FROM cycle_edits")


def test_failed_transaction_leaves_nothing(project):
    before = project.db["cycles"].count
    with pytest.raises(RuntimeError):
        with project.transaction():
            project.add_cycle(project.rec_id, 4.0, 5.0)
            raise RuntimeError("crash in the middle")
    assert project.db["cycles"].count == before
    assert project.db["cycle_edits"].count == 0


def test_a_commit_that_fails_is_rolled_back_and_the_project_stays_usable(project):
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        with project.transaction():
            project.db.execute("PRAGMA defer_foreign_keys = ON")  # so that the check comes at COMMIT
            project.db.execute('INSERT INTO cycles (recording_id, start, "end") VALUES (999, 0, 1)')
    assert not project.db.conn.in_transaction
    cid = project.add_cycle(project.rec_id, 1.0, 2.0)  # the next write starts a transaction of its own
    assert project.cycle(cid)["start"] == 1.0
    assert project.db.execute("SELECT count(*) FROM cycles WHERE recording_id = 999").fetchone()[0] == 0


def test_split_cycle(project):
    cid = project.add_cycle(project.rec_id, 1.0, 3.0, 1, 1)
    left, right = project.split_cycle(cid, 2.25)
    rows = project.cycles(project.rec_id)
    assert [(r["start"], r["end"], r["label"]) for r in rows] == [(1.0, 2.25, 3), (2.25, 3.0, 3)]


def test_second_connection_sees_committed_writes(project):
    cid = project.add_cycle(project.rec_id, 1.0, 2.0)
    other = Project.open(project.path)
    try:
        assert other.cycle(cid)["start"] == 1.0
        other.update_cycle(cid, label=3)
        assert project.cycle(cid)["label"] == 3
    finally:
        other.close()


def test_paths_are_stored_relative_and_audio_verified(project, tmp_path):
    rec = project.recording(project.rec_id)
    assert rec["path"] == "audio/rec.wav"
    assert project.verify_audio(rec) == "ok"
    wav = tmp_path / "audio" / "rec.wav"
    moved = tmp_path / "elsewhere.wav"
    wav.rename(moved)
    assert project.verify_audio(project.rec_id) == "missing"
    project.relocate_audio(project.rec_id, moved)
    assert project.recording(project.rec_id)["audio_status"] == "ok"
    other = tmp_path / "other.wav"
    sf.write(other, np.ones(8000, dtype=np.float32) * 0.1, 8000)
    with pytest.raises(ProjectError, match="not the same audio"):
        project.relocate_audio(project.rec_id, other)
    moved.write_bytes(moved.read_bytes() + b"\0\0")
    assert project.verify_audio(project.rec_id) == "changed"


def test_fingerprint_ignores_labels_but_not_boundaries(project):
    cid = project.add_cycle(project.rec_id, 1.0, 2.0)
    base = project.cycle_set_fingerprint([cid])
    project.update_cycle(cid, label=1)
    assert project.cycle_set_fingerprint([cid]) == base
    project.update_cycle(cid, end=2.5)
    assert project.cycle_set_fingerprint([cid]) != base


class _Cycle:
    def __init__(self, start, end, crackle=0, wheeze=0, line=None):
        self.start, self.end, self.crackle, self.wheeze, self.line = start, end, crackle, wheeze, line


def test_add_recording_writes_its_cycles_and_their_history_in_one_transaction(tmp_path):
    project = Project.create(tmp_path / "p.rsc")
    fields = {"name": "rec", "duration": 10.0, "annotation_path": "rec.txt"}
    rid, ids = project.add_recording(fields, [_Cycle(0.5, 2.0, 1, 0, 1), _Cycle(2.0, 4.0, 0, 1, 2)], reason="rec.txt")
    assert [(c["start"], c["label"], c["source_line"], c["origin"]) for c in project.cycles(rid)] == [
        (0.5, 1, 1, "dataset"), (2.0, 2, 2, "dataset")
    ]
    history = project.cycle_history(recording_id=rid)
    assert [(h["cycle_id"], h["action"], h["reason"]) for h in history] == [(ids[0], "import", "rec.txt"), (ids[1], "import", "rec.txt")]
    assert history[0]["after"] == {"start": 0.5, "end": 2.0, "crackle": 1, "wheeze": 0, "label": 1, "deleted": 0}

    bad = [_Cycle(0.5, 2.0, line=1), _Cycle(1.0, 3.0, line=2)]
    with pytest.raises(ProjectError, match=r"other, line 2: 1-3 s overlaps 0.5-2 s \(line 1\)"):
        project.add_recording({"name": "other", "duration": 10.0}, bad)
    assert project.recording_by_name("other") is None and project.db["cycles"].count == 2  # nothing of it stayed
    faults = []
    _, ids = project.add_recording({"name": "other", "duration": 10.0}, bad, on_fault=lambda c, f: faults.append((c.line, f.kind)))
    assert len(ids) == 1 and faults == [(2, "overlap")]
    project.close()


def test_one_tolerance_decides_every_cycle_check(project):
    from trainer.project import CYCLE_TOLERANCE, screen

    half, twice = CYCLE_TOLERANCE / 2, CYCLE_TOLERANCE * 2
    project.add_cycle(project.rec_id, 9.0, 10.0 + half)  # the audio lasts 10 s: within the tolerance past its end
    with pytest.raises(ProjectError, match="past the end"):
        project.add_cycle(project.rec_id, 1.0, 2.0 + 8.0 + twice)
    first = project.add_cycle(project.rec_id, 1.0, 2.0)
    project.add_cycle(project.rec_id, 2.0 - half, 3.0)  # overlapping by less than the tolerance is touching
    with pytest.raises(ProjectError, match="overlaps 1-2 s"):
        project.add_cycle(project.rec_id, 0.5, 1.0 + twice)
    with pytest.raises(ProjectError, match="before the recording starts"):
        project.update_cycle(first, start=-half)
    # an importer's list of cycles meets the same rule, line by line
    spans = [_Cycle(1.0, 2.0, line=1), _Cycle(2.0 - half, 3.0, line=2), _Cycle(3.0 - twice, 4.0, line=3),
             _Cycle(9.0, 10.0 + twice, line=4)]
    assert [(c.line, f.kind if f else None) for c, f in screen(spans, 10.0)] == [
        (1, None), (2, None), (3, "overlap"), (4, "past_end")
    ]


# -- the file's identity (issue 8, item 1) ------------------------------------------------------------
REPO = Path(__file__).resolve().parents[2]
V1_PROJECT = REPO / "tests" / "data" / "project_v1.rsc"


_sqlite_file = write_sqlite  # a database another program might have made


def _folder_state(folder):
    return {p.name: p.read_bytes() if p.is_file() else "folder" for p in sorted(folder.iterdir())}


def test_a_new_project_says_what_it_is_in_its_header_from_the_start(tmp_path):
    with Project.create(tmp_path / "p.rsc") as project:
        assert (tmp_path / "p.rsc").read_bytes()[68:72] == b"RSCs"
        assert project.db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID == 0x52534373
        assert project.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


@pytest.mark.parametrize("made_by", [
    pytest.param(dict(statements=["CREATE TABLE notes (x)", "INSERT INTO notes VALUES (1)"]), id="rollback-journal"),
    pytest.param(dict(statements=["CREATE TABLE notes (x)", "INSERT INTO notes VALUES (1)"], wal=True), id="wal"),
    pytest.param(dict(statements=["CREATE TABLE recordings (id INTEGER PRIMARY KEY, title TEXT)"]), id="a-clashing-table"),
    pytest.param(dict(statements=["PRAGMA application_id = 42", "CREATE TABLE t (x)"]), id="its-own-application-id"),
    pytest.param(dict(statements=["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
                                  "INSERT INTO meta VALUES ('schema_version', '2')"]), id="a-meta-table-but-no-project"),
])
def test_another_programs_sqlite_file_is_refused_and_left_exactly_as_it_was(tmp_path, made_by):
    other = _sqlite_file(tmp_path / "other.db", *made_by["statements"], wal=made_by.get("wal", False))
    mode = sqlite3.connect(other).execute("PRAGMA journal_mode").fetchone()[0]
    before = _folder_state(tmp_path)
    with pytest.raises(ProjectError, match=rf"{other}: not an RSC Studio project \((an SQLite database without|another program's)"):
        Project.open(other)
    assert _folder_state(tmp_path) == before  # same bytes; no WAL switch, no -wal/-shm, no other.db.d
    with closing(sqlite3.connect(other)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == mode


def test_a_project_made_before_the_application_id_is_recognised_and_stamped(tmp_path):
    path = tmp_path / "old.rsc"
    shutil.copy(V1_PROJECT, path)
    assert path.read_bytes()[68:72] == bytes(4)
    with Project.open(path) as project:
        assert project.db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert project.schema_version == SCHEMA_VERSION
        recordings = {row[1] for row in project.db.execute("PRAGMA table_info(recordings)")}
        imports = {row[1] for row in project.db.execute("PRAGMA table_info(imports)")}
        assert {"mtime_ns", "sample_hash"} <= recordings and {"pid", "host"} <= imports
        assert project.db.execute("SELECT count(*) FROM recordings WHERE mtime_ns IS NOT NULL OR sample_hash IS NOT NULL").fetchone()[0] == 0
    assert path.read_bytes()[68:72] == b"RSCs"  # checkpointed into the header on close


def test_a_migrated_project_whose_id_is_still_only_in_its_wal_is_recognised(tmp_path):
    path = tmp_path / "old.rsc"
    shutil.copy(V1_PROJECT, path)
    with Project.open(path) as first:  # migrated; no checkpoint yet, as if killed now
        assert path.read_bytes()[68:72] == bytes(4) and Path(f"{path}-wal").stat().st_size > 0
        with Project.open(path) as second:
            assert second.schema_version == SCHEMA_VERSION and first.schema_version == SCHEMA_VERSION


def test_two_processes_opening_an_old_project_at_once_both_open_it_and_it_is_migrated_once(tmp_path):
    path = tmp_path / "old.rsc"
    shutil.copy(V1_PROJECT, path)
    script = "import sys\nfrom trainer.project import Project\nProject.open(sys.argv[1]).close()\n"
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")  # both read schema 1, then queue for the write lock
        openers = [subprocess.Popen([sys.executable, "-c", script, str(path)], cwd=REPO, stderr=subprocess.PIPE, text=True)
                   for _ in range(2)]
        time.sleep(3)
        holder.execute("ROLLBACK")
    results = [(opener.wait(timeout=60), opener.stderr.read()) for opener in openers]
    for opener in openers:
        opener.stderr.close()
    assert [code for code, _ in results] == [0, 0], results
    with Project.open(path) as project:
        assert project.schema_version == SCHEMA_VERSION


def test_a_project_rebuilt_by_sqlite_recover_which_drops_the_id_opens_and_is_stamped_again(tmp_path):
    path = tmp_path / "p.rsc"
    Project.create(path).close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA application_id = 0")
        conn.commit()
    with Project.open(path) as project:
        assert project.db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


@pytest.mark.parametrize("value, message", [("abc", "schema version 'abc'"), (str(SCHEMA_VERSION + 1), "newer RSC Studio"),
                                            ("999", "newer RSC Studio")])
def test_a_project_whose_schema_this_version_cannot_read_is_refused_untouched(tmp_path, value, message):
    path = tmp_path / "p.rsc"
    Project.create(path).close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [value])
        conn.commit()
    before = _folder_state(tmp_path)
    with pytest.raises(ProjectError, match=message):
        Project.open(path)
    assert _folder_state(tmp_path) == before


def test_a_bad_busy_timeout_setting_is_named(tmp_path, monkeypatch):
    Project.create(tmp_path / "p.rsc").close()
    monkeypatch.setenv("RSC_BUSY_TIMEOUT_S", "soon")
    with pytest.raises(ProjectError, match="RSC_BUSY_TIMEOUT_S='soon': expected a number of seconds"):
        Project.open(tmp_path / "p.rsc")
    monkeypatch.setenv("RSC_BUSY_TIMEOUT_S", "0.5")
    with Project.open(tmp_path / "p.rsc") as project:
        assert project.busy_timeout == 0.5


def test_a_failed_create_leaves_no_file_behind(tmp_path):
    from trainer.project import schema

    def broken(db):
        raise sqlite3.OperationalError("database or disk is full")

    original = schema.MIGRATIONS[0]
    schema.MIGRATIONS[0] = broken  # in place: the list every importer shares
    try:
        with pytest.raises(ProjectError, match="the disk holding .*new.rsc is full"):
            Project.create(tmp_path / "sub" / "new.rsc")
    finally:
        schema.MIGRATIONS[0] = original
    assert list(tmp_path.iterdir()) == []  # neither the file nor the folder made for it


# -- the import log (issue 8, item 10) ------------------------------------------------------------------
def test_an_import_whose_process_was_killed_reads_as_interrupted(tmp_path):
    path = tmp_path / "p.rsc"
    Project.create(path).close()
    script = ("import sys, time\nfrom trainer.project import Project\n"
              "p = Project.open(sys.argv[1]); p.begin_import('folder', '/data'); print('begun', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "begun"
        with Project.open(path) as project:
            assert [row["status"] for row in project.imports()] == ["running"]  # its process still runs
            proc.kill()
            proc.wait()
            log = project.imports()
            assert [(row["status"], row["pid"]) for row in log] == [("interrupted", proc.pid)] and log[0]["finished_at"]
            assert project.db.execute("SELECT status FROM imports").fetchone()[0] == "interrupted"  # stored, not only shown
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_a_new_import_marks_dead_ones_interrupted_and_leaves_live_and_remote_ones(project):
    dead = project.begin_import("folder", "/a")
    project.db.execute("UPDATE imports SET pid = ? WHERE id = ?", [2**22 + 12345, dead])
    remote = project.begin_import("folder", "/b")
    project.db.execute("UPDATE imports SET host = 'another-machine', pid = 1 WHERE id = ?", [remote])
    legacy = project.begin_import("folder", "/c")
    project.db.execute("UPDATE imports SET host = NULL, pid = NULL WHERE id = ?", [legacy])  # a row from before schema 3
    mine = project.begin_import("folder", "/d")
    status = dict(project.db.execute("SELECT id, status FROM imports").fetchall())
    assert status == {dead: "interrupted", remote: "running", legacy: "interrupted", mine: "running"}
    project.finish_import(mine, "done", {"added": 1})
    assert [row["status"] for row in project.imports()] == ["done", "interrupted", "running", "interrupted"]
