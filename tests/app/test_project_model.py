"""The app's model layer: edits made through it, and writes by other processes, reach the open views."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from rscapp.mainwindow import MainWindow
from rscapp.model import ProjectModel
from trainer.project import Project, ProjectError
from trainer.project.queries import library_counts
from trainer.vocab import LABELS

REPO = Path(__file__).resolve().parents[2]
SOON_MS = 1000  # the promise: another process's write shows in the open app within a second


def run_elsewhere(code: str) -> None:
    """Run ``code`` in a separate Python process (as the worker or the CLI would) and wait for it."""
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, check=True, timeout=120)


@pytest.fixture
def window(qtbot, tmp_path, demo_copy):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, data_dir=tmp_path / "data")
    window.auto_check_audio = False  # nothing but the other process writes during these tests
    qtbot.addWidget(window)
    assert window.open_project(demo_copy(tmp_path / "open"))
    yield window
    window.close_project()


def test_a_cycle_relabelled_by_another_process_shows_in_the_open_library_within_a_second(window, qtbot):
    project, lib = window.project, window.library
    cycle = project.cycles()[5]
    new_label = (cycle["label"] + 1) % 4
    split = project.recording(cycle["recording_id"])["split"]
    before = dict(lib.counts["cycles"][split])
    announced = []
    window.model.cyclesChanged.connect(lambda cycle_ids, recording_ids: announced.append((cycle_ids, recording_ids)))

    run_elsewhere(f"""
        from trainer.project import Project
        with Project.open({str(project.path)!r}) as project:
            project.update_cycle({cycle["id"]}, label={new_label}, author="another process")
    """)
    written = time.monotonic()
    qtbot.waitUntil(lambda: bool(announced), timeout=SOON_MS)
    assert announced == [([cycle["id"]], [cycle["recording_id"]])]
    row = lib.cycles.row_of_id(cycle["id"])
    qtbot.waitUntil(lambda: int(lib.cycles.value(row, "label")) == new_label, timeout=SOON_MS)
    assert time.monotonic() - written < SOON_MS / 1000
    assert int(lib.cycles.value(row, "edited")) == 1
    rec_row = lib.recordings.row_of_id(cycle["recording_id"])
    assert int(lib.recordings.value(rec_row, LABELS[new_label])) == sum(
        1 for c in project.cycles(recording_id=cycle["recording_id"]) if c["label"] == new_label
    )
    after = lib.counts["cycles"][split]
    assert after[LABELS[new_label]] == before[LABELS[new_label]] + 1
    assert after[LABELS[cycle["label"]]] == before[LABELS[cycle["label"]]] - 1
    assert lib.counts == library_counts(project)
    assert f"{split}: {after['total']} cycles" in window.status_counts.text()
    assert project.cycle_history(cycle["id"])[-1]["author"] == "another process"


def test_a_run_finished_by_another_process_shows_in_the_open_app_within_a_second(window, qtbot):
    path = window.project.path
    announced = []
    window.model.runsChanged.connect(announced.append)
    assert not window.status_runs.isVisibleTo(window)  # no runs yet

    run_elsewhere(f"""
        from trainer.project import Project
        from trainer.runs import finish, insert_run
        with Project.open({str(path)!r}) as project:
            insert_run(project, "teacher-s0", group="teachers", kind="teacher", arch="cnn6-tiny", seed=0, spec={{}})
            finish(project, "teacher-s0", metrics={{"score": 0.61}}, checkpoint=None, epoch=3)
    """)
    written = time.monotonic()
    qtbot.waitUntil(lambda: bool(announced), timeout=SOON_MS)
    assert time.monotonic() - written < SOON_MS / 1000
    assert announced == [["teacher-s0"]]
    (run,) = window.model.runs()
    assert (run.id, run.status, run.epoch, run.metrics) == ("teacher-s0", "done", 3, {"score": 0.61})
    assert window.status_runs.text() == "runs: 1 done" and window.status_runs.isVisibleTo(window)


def test_a_quiet_poll_reads_nothing_but_the_data_version(tmp_path, demo_copy, qtbot):
    with Project.open(demo_copy(tmp_path / "quiet")) as project:
        model = ProjectModel()
        model.set_project(project)
        statements = []
        project.db.conn.set_trace_callback(statements.append)
        for _ in range(5):
            assert not model.poll()
        project.db.conn.set_trace_callback(None)
        model.set_project(None)
    assert statements == ["PRAGMA data_version"] * 5


def test_edits_through_the_model_are_announced_once_after_the_commit(tmp_path, demo_copy, qtbot):
    with Project.open(demo_copy(tmp_path / "edits")) as project:
        model = ProjectModel()
        model.set_project(project)
        first, second = project.cycles()[:2]
        announced = []
        model.cyclesChanged.connect(lambda cycle_ids, recording_ids: announced.append((cycle_ids, recording_ids)))
        with model.transaction():
            model.update_cycle(first["id"], label=3 if first["label"] != 3 else 0)
            model.delete_cycle(second["id"])
            assert not announced  # nothing is said before the commit
        recordings = sorted({first["recording_id"], second["recording_id"]})
        assert announced == [(sorted([first["id"], second["id"]]), recordings)]
        # a refused edit rolls back and announces nothing
        with pytest.raises(ProjectError):
            with model.transaction():
                model.update_cycle(first["id"], label=1)
                model.update_cycle(first["id"], start=first["end"] + 5)  # ends before it starts
        assert len(announced) == 1 and project.cycle(first["id"])["label"] != 1
        # the model's own writes are not announced a second time by the next poll
        assert not model.poll()
        model.set_project(None)


def test_the_counts_kept_by_the_model_always_equal_a_fresh_count(tmp_path, demo_copy, qtbot):
    with Project.open(demo_copy(tmp_path / "counts")) as project, Project.open(project.path) as elsewhere:
        model = ProjectModel()
        model.set_project(project)
        assert model.counts() == library_counts(project)
        cycles = project.cycles()
        recording = project.recordings()[0]
        edits = [
            lambda: model.update_cycle(cycles[0]["id"], label=3 if cycles[0]["label"] != 3 else 0),
            lambda: model.delete_cycle(cycles[1]["id"]),
            lambda: model.split_cycle(cycles[2]["id"], (cycles[2]["start"] + cycles[2]["end"]) / 2),
            lambda: model.restore_cycle(cycles[1]["id"]),
        ]
        for edit in edits:
            edit()
            assert model.counts() == library_counts(project)
        # another connection takes a recording out of its split: an "unassigned" row appears, then goes
        elsewhere.update_recording(recording["id"], {"split": None})
        assert model.poll().recording_ids == [recording["id"]]
        assert "unassigned" in model.counts()["cycles"] and model.counts() == library_counts(project)
        elsewhere.update_recording(recording["id"], {"split": recording["split"]})
        model.poll()
        assert "unassigned" not in model.counts()["cycles"] and model.counts() == library_counts(project)
        model.set_project(None)
