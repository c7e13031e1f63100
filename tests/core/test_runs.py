"""The runs owner: statuses, claims, progress apart from final metrics, epochs, and the v1 -> v2 migration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from trainer import runs
from trainer.project import Project
from trainer.project.schema import SCHEMA_VERSION

V1_PROJECT = Path(__file__).resolve().parents[1] / "data" / "project_v1.rsc"


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "runs.rsc") as p:
        yield p


def _insert(project, run_id, seed=1, group="teachers", status="queued"):
    return runs.insert_run(project, run_id, group=group, kind="teacher", arch="cnn6-tiny", seed=seed,
                           spec={"arch": "cnn6-tiny", "seed": seed}, status=status, code_version="test")


def test_a_project_file_made_by_schema_1_moves_its_live_progress_out_of_the_final_metrics(tmp_path):
    # Made by the code before the runs owner (commit cfc35e5): one done run, one claimed by a worker
    # (progress stored in metrics), one queued, one cancelled while queued.
    path = tmp_path / "old.rsc"
    shutil.copy(V1_PROJECT, path)
    with Project.open(path) as project:
        assert project.schema_version == SCHEMA_VERSION  # every migration ran, the progress one included
        by_status = {r.status: r for r in runs.list_runs(project)}
        assert sorted(by_status) == ["cancelled", "done", "queued", "running"]
        done, running = by_status["done"], by_status["running"]
        assert set(done.metrics) >= {"sp", "se", "score", "confusion", "selection"} and done.progress == {}
        assert running.metrics == {} and running.progress["phase"] == "claimed" and running.progress["pid"]
        assert len(runs.run_epochs(project, done.id)) == 2
        assert len(runs.run_cycle_ids(project, done.id)) > 0
        assert project.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Project.open(path) as project:  # a second open migrates nothing again
        assert project.schema_version == SCHEMA_VERSION


def test_a_migration_that_fails_halfway_leaves_the_old_file_untouched(tmp_path):
    from trainer.project import schema

    path = tmp_path / "old.rsc"
    shutil.copy(V1_PROJECT, path)

    def broken(db):
        schema._execute_script(db, "ALTER TABLE runs ADD COLUMN progress TEXT;")
        raise RuntimeError("disk fell off")

    original = schema.MIGRATIONS[1]
    schema.MIGRATIONS[1] = broken  # in place: the list every importer shares
    try:
        with pytest.raises(RuntimeError, match="disk fell off"):
            Project.open(path)
    finally:
        schema.MIGRATIONS[1] = original
    with _raw(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    assert "progress" not in columns and version == "1"


def _raw(path):
    import sqlite3
    from contextlib import closing

    return closing(sqlite3.connect(str(path)))


def test_two_claims_never_take_the_same_queued_run(project):
    _insert(project, "a", seed=1)
    _insert(project, "b", seed=2)
    assert runs.claim(project) == "a"
    assert runs.claim(project, "a") is None  # already taken
    assert runs.claim(project) == "b"
    assert runs.claim(project) is None
    claimed = runs.get_run(project, "a")
    assert claimed.status == "running" and claimed.progress["phase"] == "claimed" and claimed.owner_alive()


def test_progress_and_final_metrics_live_in_their_own_columns(project):
    _insert(project, "a")
    runs.claim(project, "a")
    runs.write_progress(project, "a", {"phase": "train", "epoch": 1, "epochs": 2})
    run = runs.get_run(project, "a")
    assert run.progress["epoch"] == 1 and run.metrics == {}
    runs.record_epoch(project, "a", 1, {"epoch": 1, "loss": 0.5})
    runs.record_epoch(project, "a", 2, {"epoch": 2, "loss": 0.25})
    runs.finish(project, "a", metrics={"score": 70.0}, checkpoint="runs/a/model.safetensors", epoch=2)
    run = runs.get_run(project, "a")
    assert run.finished and run.metrics == {"score": 70.0} and run.progress == {} and run.epoch == 2
    assert [e["loss"] for e in runs.run_epochs(project, "a")] == [0.5, 0.25]


def test_resuming_from_an_older_checkpoint_forgets_the_later_epochs(project):
    _insert(project, "a")
    for epoch in (1, 2, 3):
        runs.record_epoch(project, "a", epoch, {"epoch": epoch})
    runs.truncate_epochs(project, "a", 2)
    assert [e["epoch"] for e in runs.run_epochs(project, "a")] == [1, 2]
    assert runs.get_run(project, "a").epoch == 2


def test_cancel_stops_a_queued_run_at_once_and_asks_a_live_one_to_stop(project):
    _insert(project, "queued", seed=1)
    _insert(project, "live", seed=2)
    assert runs.cancel(project, "queued") == "cancelled"
    runs.claim(project, "live")
    assert runs.cancel(project, "live") == "cancelling"
    assert runs.start(project, "live") == "cancelled"  # a cancel before the start is not lost


def test_a_running_run_whose_process_died_is_cancelled_and_can_be_requeued(project):
    _insert(project, "a")
    runs.claim(project, "a")
    project.db.execute("UPDATE runs SET progress = ? WHERE id = 'a'", [json.dumps({"pid": 2**22 + 12345})])
    assert not runs.get_run(project, "a").owner_alive()
    assert runs.cancel(project, "a") == "cancelled"
    runs.requeue(project, "a")
    assert runs.get_run(project, "a").status == "queued"


def test_a_done_run_cannot_be_requeued_nor_cancelled(project):
    _insert(project, "a")
    runs.finish(project, "a", metrics={}, checkpoint=None, epoch=0)
    with pytest.raises(runs.RunError, match="already done"):
        runs.requeue(project, "a")
    with pytest.raises(runs.RunError, match="only queued or running"):
        runs.cancel(project, "a")


def test_unknown_runs_are_named_in_the_error(project):
    with pytest.raises(runs.RunError, match="no run 'nope'"):
        runs.get_run(project, "nope")


def test_the_runs_version_changes_with_every_status_or_epoch_change(project):
    seen = {runs.runs_version(project)}
    _insert(project, "a")
    seen.add(runs.runs_version(project))
    runs.claim(project, "a")
    seen.add(runs.runs_version(project))
    runs.record_epoch(project, "a", 1, {"epoch": 1})
    seen.add(runs.runs_version(project))
    runs.finish(project, "a", metrics={}, checkpoint=None, epoch=1)
    seen.add(runs.runs_version(project))
    assert len(seen) == 5


def test_runs_are_listed_by_group_prefix_and_status(project):
    _insert(project, "a", group="sweep_k1")
    _insert(project, "b", group="sweepXk1")  # '_' must not match as a wildcard
    _insert(project, "c", group="other")
    assert [r.id for r in runs.list_runs(project, group_prefix="sweep_")] == ["a"]
    assert {r.id for r in runs.list_runs(project, status="queued")} == {"a", "b", "c"}
    assert runs.group_names(project) == ["other", "sweepXk1", "sweep_k1"]


def test_removing_a_run_deletes_its_rows_and_its_checkpoint_folder_and_nothing_else(project):
    _insert(project, "gone", seed=1)
    _insert(project, "kept", seed=2)
    cycle_id = _one_cycle(project)
    for run_id in ("gone", "kept"):
        runs.record_epoch(project, run_id, 1, {"epoch": 1})
        runs.store_logits(project, run_id, [cycle_id], [[0.1, 0.2, 0.3, 0.4]])
        folder = runs.run_folder(project, run_id)
        folder.mkdir(parents=True)
        (folder / "state.safetensors").write_bytes(b"weights")
    runs.remove_run(project, "gone")
    assert not runs.run_exists(project, "gone") and runs.run_epochs(project, "gone") == []
    assert runs.run_cycle_ids(project, "gone") == [] and not runs.run_folder(project, "gone").exists()
    assert [e["epoch"] for e in runs.run_epochs(project, "kept")] == [1]
    assert runs.run_cycle_ids(project, "kept") == [cycle_id]
    assert (runs.run_folder(project, "kept") / "state.safetensors").read_bytes() == b"weights"


def test_a_run_being_trained_by_a_live_process_cannot_be_removed_but_an_orphaned_one_can(project):
    _insert(project, "live", seed=1)
    runs.claim(project, "live")  # claimed by this very process, which is alive
    with pytest.raises(runs.RunError, match="being trained by process"):
        runs.remove_run(project, "live")
    assert runs.run_exists(project, "live")
    project.db.execute("UPDATE runs SET progress = ? WHERE id = 'live'", [json.dumps({"pid": 2**22 + 12345})])
    runs.remove_run(project, "live")
    assert not runs.run_exists(project, "live")


def test_a_run_id_that_would_lead_outside_the_runs_folder_is_refused(project):
    outside = project.artifacts / "precious.txt"
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_text("keep me")
    for bad in ("..", "../precious.txt", "a/b"):
        with pytest.raises(runs.RunError, match="cannot name a checkpoint folder"):
            runs.remove_run(project, bad)
    assert outside.read_text() == "keep me"
    with pytest.raises(runs.RunError, match="no run 'nope'"):
        runs.remove_run(project, "nope")


def _one_cycle(project) -> int:
    """A cycle to hang outputs on (outputs reference cycles)."""
    _, (cycle_id,) = project.add_recording({"name": "rec", "duration": 10.0}, [_Cycle(0.5, 2.0)])
    return cycle_id


class _Cycle:
    def __init__(self, start, end, crackle=0, wheeze=0, line=None):
        self.start, self.end, self.crackle, self.wheeze, self.line = start, end, crackle, wheeze, line


# -- cycle sets and checkpoint records (schema 4) -------------------------------------------------
def _recording(project, name, split, cycles=((0.5, 2.0), (2.5, 4.0))) -> list[int]:
    rec_id, ids = project.add_recording({"name": name, "duration": 10.0, "split": split, "sha256": name * 4,
                                         "audio_status": "ok"},
                                        [_Cycle(a, b) for a, b in cycles])
    return ids


def _fixed_set(project, group="g"):
    live = runs.live_cycles(project)
    rows = [r for r in live.values() if not r["deleted"]]
    return runs.fix_cycle_set(project, group, runs.members_of(rows), "fp-" + group)


def test_a_cycle_set_names_every_way_its_cycles_changed(project):
    first = _recording(project, "a", "train")
    second = _recording(project, "b", "test")
    set_id = _fixed_set(project)
    assert not runs.read_cycle_set(project, set_id).changes()
    _recording(project, "c", "train")  # an import adds cycles: the set is not affected
    assert not runs.read_cycle_set(project, set_id).changes()
    project.update_cycle(first[0], label=2, reason="test")
    project.update_cycle(first[1], end=4.5, reason="test")
    project.delete_cycle(second[0])
    project.update_recording(project.cycle(second[1])["recording_id"], {"split": "train"})
    project.update_recording(project.cycle(first[0])["recording_id"], {"sha256": "other"})
    project.update_recording(project.cycle(second[0])["recording_id"], {"audio_status": "missing"})
    changes = runs.read_cycle_set(project, set_id).changes()
    assert changes.cycles == [
        f"cycle {first[0]} of a (0.50-2.00 s): label normal -> wheeze",
        f"cycle {first[1]} of a (2.50-4.00 s): boundaries now 2.50-4.50 s",
        f"cycle {second[0]} of b (0.50-2.00 s): deleted",
        f"cycle {second[1]} of b (2.50-4.00 s): split test -> train",
    ]
    assert changes.audio == ["recording a: audio content changed (sha256)", "recording b: audio missing"]
    assert len(changes) == 6 and "; and" not in changes.describe()


def test_a_group_shares_one_cycle_set_which_goes_with_its_last_run(project):
    _recording(project, "a", "train")
    set_id = _fixed_set(project, "teachers")
    for run_id in ("t1", "t2"):
        _insert(project, run_id, group="teachers")
        runs.assign_cycle_set(project, run_id, set_id)
    _insert(project, "lonely", group="other")
    assert runs.group_cycle_set(project, "teachers") == set_id and runs.group_cycle_set(project, "other") is None
    assert runs.shared_cycle_set(project, ["t1", "t2"]) == set_id and runs.shared_cycle_set(project, ["t1", "lonely"]) is None
    runs.record_checkpoint(project, "t1", "state-0001.safetensors", 1, "0" * 64, 10)
    runs.remove_run(project, "t1")
    assert project.db["cycle_sets"].count == 1 and project.db["checkpoints"].count == 0
    runs.remove_run(project, "t2")
    assert project.db["cycle_sets"].count == 0 and project.db["cycle_set_members"].count == 0


def test_a_checkpoint_record_tells_a_damaged_file_from_the_one_written(project, tmp_path):
    _insert(project, "r")
    folder = tmp_path / "r"
    folder.mkdir()
    data = b"tensors" * 100
    (folder / "state-0001.safetensors").write_bytes(data)
    import hashlib

    record = runs.record_checkpoint(project, "r", "state-0001.safetensors", 1, hashlib.sha256(data).hexdigest(), len(data))
    assert runs.checkpoint_records(project, "r") == {"state-0001.safetensors": record}
    assert record.fault(folder) is None
    (folder / "state-0001.safetensors").write_bytes(data[:-1] + b"X")
    assert record.fault(folder) == "damaged: its sha256 differs from the one recorded when it was written"
    (folder / "state-0001.safetensors").write_bytes(data[:10])
    assert record.fault(folder) == f"damaged: 10 bytes, {len(data)} were written"
    (folder / "state-0001.safetensors").unlink()
    assert record.fault(folder) == "missing"
    runs.forget_checkpoints(project, "r")
    assert runs.checkpoint_records(project, "r") == {}


def test_the_report_gives_no_mean_for_a_group_whose_runs_trained_on_different_cycles(project):
    from trainer.results import build_report

    for run_id, fingerprint, score in (("s1", "before-import", 60.0), ("s2", "after-import", 70.0),
                                       ("u1", "same", 50.0), ("u2", "same", 54.0)):
        group = "mixed" if run_id.startswith("s") else "one-set"
        runs.insert_run(project, run_id, group=group, kind="teacher", arch="cnn6-tiny", seed=int(run_id[1]),
                        spec={"arch": "cnn6-tiny", "seed": int(run_id[1])}, status="running", code_version="test",
                        data_fingerprint=fingerprint)
        runs.finish(project, run_id, metrics={"sp": score, "se": score, "score": score}, checkpoint=None, epoch=1)
    report = build_report(project)
    groups = {g["group"]: g for g in report["groups"]}
    assert groups["mixed"]["score"]["mean"] is None and groups["mixed"]["score"]["values"] == [60.0, 70.0]
    assert groups["mixed"]["cycle_sets"] == [["s1"], ["s2"]]
    assert groups["one-set"]["score"]["mean"] == pytest.approx(52.0)
    assert any(note.startswith("mixed: its 2 runs trained on 2 different cycle sets (s1; s2)") for note in report["notes"])
    assert {"group": "mixed", "error": "its runs trained on different cycle sets"} in report["ensembles"]
