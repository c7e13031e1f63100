"""Main window: projects (open, recent, demo, corrupt files), imports with cancel, settings, errors."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt, QThread
from PySide6.QtWidgets import QApplication, QPushButton

from rscapp import dialogs
from rscapp.main import install_excepthook, parse_args
from rscapp.mainwindow import MainWindow
from rscapp.recent import MAX_RECENT
from rscapp.workers import Cancelled, Task, start
from trainer.vocab import LABELS as LABELS_


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, tmp_path, settings):
    windows = []

    def make():
        window = MainWindow(settings=settings, data_dir=tmp_path / "appdata")
        qtbot.addWidget(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close_project()


@pytest.fixture
def errors(monkeypatch):
    shown: list[tuple[str, str | None]] = []
    monkeypatch.setattr(dialogs, "show_error", lambda parent, message, details=None, title="": shown.append((message, details)))
    return shown


def test_open_project_shows_counts(make_window, tmp_path, demo_copy):
    window = make_window()
    path = demo_copy(tmp_path / "a")
    assert window.open_project(path)
    conn = sqlite3.connect(path)
    recordings = conn.execute("SELECT count(*) FROM recordings").fetchone()[0]
    train = conn.execute(
        "SELECT count(*) FROM cycles c JOIN recordings r ON r.id = c.recording_id WHERE r.split = 'train' AND c.deleted = 0"
    ).fetchone()[0]
    total = conn.execute("SELECT count(*) FROM cycles WHERE deleted = 0").fetchone()[0]
    conn.close()
    text = window.status_counts.text()
    assert f"{recordings} recordings" in text
    assert f"train: {train} cycles" in text
    assert "audio ok" in text
    assert window.library.recordings.rowCount() == recordings
    assert window.library.cycles.rowCount() == total
    assert path.name in window.windowTitle()
    assert window.act_import_icbhi.isEnabled()
    window.close_project()
    assert window.project is None
    assert not window.act_import_icbhi.isEnabled()
    assert window.library.cycles.rowCount() == 0


def test_recent_projects_kept_between_runs_and_pruned(make_window, tmp_path, demo_copy, settings):
    window = make_window()
    first = demo_copy(tmp_path / "one")
    second = demo_copy(tmp_path / "two")
    assert window.open_project(first)
    assert window.open_project(second)
    assert window.recent_projects() == [str(second.resolve()), str(first.resolve())]
    window.save_settings()
    again = make_window()  # a new run reads the same settings
    assert again.recent_projects()[:2] == [str(second.resolve()), str(first.resolve())]
    assert again.last_project() == str(second.resolve())
    shutil.rmtree(tmp_path / "one")
    assert again.prune_recent() == [str(second.resolve())]
    for i in range(MAX_RECENT + 3):
        again.add_recent(tmp_path / f"p{i}.rsc")
    assert len(again.recent_projects()) == MAX_RECENT
    assert again.recent_projects()[0] == str((tmp_path / f"p{MAX_RECENT + 2}.rsc").resolve())


def test_window_layout_tab_and_filters_restored(make_window, tmp_path, demo_copy):
    window = make_window()
    assert window.open_project(demo_copy(tmp_path / "a"))
    window.resize(711, 533)  # the offscreen screen is 800x600: restoreGeometry fits to it
    window.tabs.setCurrentIndex(1)
    window.library.cycle_filters.label.setCurrentIndex(window.library.cycle_filters.label.findText("crackle"))
    window.library.cycle_filters.search.setText("Meditron")
    window.close()  # closeEvent saves the settings
    again = make_window()
    assert (again.size().width(), again.size().height()) == (711, 533)
    assert again.tabs.currentIndex() == 1
    assert again.library.cycle_filters.label.currentText() == "crackle"
    assert again.library.cycle_filters.search.text() == "Meditron"


@pytest.mark.parametrize(
    "content",
    [os.urandom(4096), b"SQLite format 3\x00" + os.urandom(8192)],
    ids=["random-bytes", "sqlite-header-then-garbage"],
)
def test_corrupt_project_gives_an_error_dialog(make_window, tmp_path, errors, content):
    bad = tmp_path / "broken study.rsc"
    bad.write_bytes(content)
    window = make_window()
    window.add_recent(bad)
    assert not window.open_project(bad)
    assert len(errors) == 1
    message, _ = errors[0]
    assert "broken study.rsc" in message
    assert "Traceback" not in message
    assert window.project is None
    assert str(bad.resolve()) not in window.recent_projects()


def test_missing_project_file_gives_an_error_dialog(make_window, tmp_path, errors):
    window = make_window()
    assert not window.open_project(tmp_path / "nowhere.rsc")
    assert "nowhere.rsc" in errors[0][0]


def test_new_project_refuses_existing_file(make_window, tmp_path, errors):
    window = make_window()
    path = tmp_path / "fresh.rsc"
    assert window.new_project(path)
    assert window.project is not None and window.project.path == path.resolve()
    assert window.library.recordings.rowCount() == 0
    window.close_project()
    assert not window.new_project(path)
    assert "fresh.rsc already exists" in errors[0][0]


def test_demo_project_created_in_data_dir_then_reused(make_window, qtbot, tmp_path):
    window = make_window()
    task = window.open_demo()
    assert task is not None
    with qtbot.waitSignal(task.signals.done, timeout=60000):
        pass
    qtbot.waitUntil(lambda: window.project is not None, timeout=5000)
    assert window.project.path == (tmp_path / "appdata" / "demo" / "demo.rsc").resolve()
    assert window.library.recordings.rowCount() == 24
    assert window.library.counts["audio_problems"] == 0
    window.close_project()
    assert window.open_demo() is None  # already there: opened at once
    assert window.project is not None


def test_import_cancel_keeps_whole_recordings_and_a_valid_project(make_window, qtbot, tmp_path, synth_dir, errors):
    window = make_window()
    path = tmp_path / "imp.rsc"
    assert window.new_project(path)
    task = window.import_dataset("icbhi", synth_dir, show_progress=False)
    # Cancel as soon as the first recording is in, on the worker thread itself, as a user's click would
    # land between two recordings.
    task.signals.progress.connect(lambda done, total, msg: task.cancel(), Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(task.signals.done, timeout=60000):
        pass
    assert task.state == "cancelled"
    assert not errors
    qtbot.waitUntil(lambda: window.library.recordings.rowCount() > 0, timeout=5000)
    project = window.project
    assert project.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    imported = project.recordings()
    assert 1 <= len(imported) < 24
    audio_dir = synth_dir / "ICBHI_final_database"
    for rec in imported:  # every recording that is in came in whole
        lines = [l for l in (audio_dir / f"{rec['name']}.txt").read_text().splitlines() if l.strip()]
        assert len(project.cycles(recording_id=rec["id"])) == len(lines), rec["name"]
    assert project.db.execute("SELECT status FROM imports ORDER BY id DESC").fetchone()[0] == "cancelled"
    assert window.library.cycles.rowCount() == project.db["cycles"].count

    # the same import run again completes the project; nothing is duplicated
    reports = []
    window._import_finished = lambda directory, report: reports.append(report) or window._refresh_after_import()
    task = window.import_dataset("icbhi", synth_dir, show_progress=False)
    with qtbot.waitSignal(task.signals.done, timeout=60000):
        pass
    assert task.state == "finished"
    qtbot.waitUntil(lambda: window.library.recordings.rowCount() == 24, timeout=5000)
    total_lines = sum(
        len([l for l in txt.read_text().splitlines() if l.strip()]) for txt in audio_dir.glob("*.txt")
    )
    assert project.db["cycles"].count == total_lines


def test_import_progress_dialog_cancel_button(make_window, qtbot, tmp_path, synth_dir, monkeypatch, errors):
    import time

    import trainer.data.icbhi as icbhi

    original = icbhi._import_one

    def slow_import_one(*args, **kwargs):  # a user's import of 900 files takes minutes, not milliseconds
        time.sleep(0.15)
        return original(*args, **kwargs)

    monkeypatch.setattr(icbhi, "_import_one", slow_import_one)
    window = make_window()
    assert window.new_project(tmp_path / "dialog.rsc")
    task = window.import_dataset("icbhi", synth_dir)
    dialog = window.progress_dialog
    qtbot.waitUntil(lambda: dialog.isVisible() and dialog.maximum() == 24, timeout=10000)
    button = dialog.findChild(QPushButton)
    with qtbot.waitSignal(task.signals.done, timeout=20000):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert task.state == "cancelled"
    qtbot.waitUntil(lambda: window.library.recordings.rowCount() > 0, timeout=5000)
    assert 1 <= window.project.db["recordings"].count < 24
    assert "cancelled" in window.statusBar().currentMessage()
    assert not errors


def test_import_problems_are_listed_with_file_and_line(make_window, qtbot, tmp_path, synth_dir, monkeypatch):
    source = tmp_path / "bad"
    shutil.copytree(synth_dir, source)
    audio = source / "ICBHI_final_database"
    for wav in sorted(audio.glob("*.wav"))[3:]:
        wav.unlink()
        wav.with_suffix(".txt").unlink()
    broken = sorted(audio.glob("*.txt"))[0]
    lines = broken.read_text().splitlines()
    lines.insert(1, "1.0\tnot-a-number\t0\t0")
    broken.write_text("\n".join(lines) + "\n")
    shown = []
    monkeypatch.setattr(dialogs, "show_report", lambda parent, title, summary, messages: shown.append(messages))
    window = make_window()
    assert window.new_project(tmp_path / "bad.rsc")
    task = window.import_dataset("icbhi", source, show_progress=False)
    with qtbot.waitSignal(task.signals.done, timeout=60000):
        pass
    qtbot.waitUntil(lambda: bool(shown), timeout=5000)
    where = [(Path(file).name, line) for level, file, line, message in shown[0]]
    assert (broken.name, 2) in where


def test_progress_dialog_cancel_cancels_the_task(qtbot):
    import threading

    gate = threading.Event()

    def slow(progress):
        progress(0, 3, "waiting")
        gate.wait(10)
        progress(1, 3)  # raises Cancelled
        return "not reached"

    task = Task(slow)
    dialog = dialogs.TaskProgressDialog(None, "Testing", task)
    start(task)
    qtbot.waitUntil(lambda: "waiting" in dialog.labelText(), timeout=5000)
    button = dialog.findChild(QPushButton)
    assert button is not None and button.text() == "Cancel"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert task.is_cancelled
    with qtbot.waitSignal(task.signals.done, timeout=5000):
        gate.set()
    assert task.state == "cancelled" and task.result is None


def test_task_errors_reach_the_gui_thread(qtbot):
    def boom(progress):
        progress(1, 2)
        raise ValueError("data/x.txt:3: bad number")

    task = Task(boom)
    threads = []
    # plain callables (no receiver object) must run on the GUI thread too: views connect lambdas
    task.signals.progress.connect(lambda *a: threads.append(QThread.currentThread()))
    task.signals.failed.connect(lambda *a: threads.append(QThread.currentThread()))
    with qtbot.waitSignal(task.signals.done, timeout=5000):
        start(task)
    exc, tb = task.error, None
    assert isinstance(exc, ValueError) and "x.txt:3" in str(exc)
    qtbot.waitUntil(lambda: len(threads) == 2, timeout=2000)
    gui = QApplication.instance().thread()
    assert all(t is gui or t == gui for t in threads)
    assert task.state == "failed"


def test_unexpected_errors_go_to_the_error_dialog(qtbot, errors, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_excepthook(lambda: None)
    try:
        raise RuntimeError("something odd in a slot")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    message, details = errors[0]
    assert "something odd in a slot" in message
    assert "Traceback" in details and "RuntimeError" in details


def test_about_lists_versions(qtbot):
    about = dialogs.AboutDialog()
    qtbot.addWidget(about)
    names = dict(about.rows)
    for name in ("Python", "Qt", "PySide6", "pyqtgraph", "torch", "numpy"):
        assert names.get(name) and names[name] != "not installed", name
    assert "PySide6: " in about.text()


def test_command_line():
    args = parse_args(["study.rsc", "--demo"])
    assert args.project == "study.rsc" and args.demo
    assert parse_args([]).project is None


def test_listen_relabel_undo_redo_then_reopen_keeps_change_and_history(make_window, qtbot, tmp_path, demo_copy):
    """The newcomer's path: open, select a recording, open a cycle in Listen, relabel, undo, redo,
    restart the app: the change and its history are in the project."""
    window = make_window()
    path = demo_copy(tmp_path / "study")
    assert window.open_project(path)
    lib = window.library
    lib.select_recording(lib.recordings.id_at(1))
    rec_id = lib.selected_recording_id()
    lib.cycle_filters.search.setText(str(lib.recordings.value(lib.recordings.row_of_id(rec_id), "name")))
    row = 1
    cycle_id = lib.cycles.id_at(row)
    old_label = int(lib.cycles.value(row, "label"))
    new_label = (old_label + 1) % 4
    lib.cycles_view.doubleClicked.emit(lib.cycles.index(row, 0))
    listen = window.listen
    assert window.tabs.currentWidget() is listen
    assert (listen.current_recording_id, listen.current_cycle_id) == (rec_id, cycle_id)

    before = dict(window.library.counts["cycles"]["all"])
    with qtbot.waitSignal(window.model.cyclesChanged, timeout=5000) as changed:
        assert listen.relabel(new_label)
    assert changed.args == [[cycle_id], [rec_id]]
    crow = lib.cycles.row_of_id(cycle_id)
    assert int(lib.cycles.value(crow, "label")) == new_label and int(lib.cycles.value(crow, "edited")) == 1
    after = window.library.counts["cycles"]["all"]
    assert after[LABELS_[new_label]] == before[LABELS_[new_label]] + 1
    split = window.project.recording(rec_id)["split"]
    per_class = [
        window.project.db.execute(
            "SELECT count(*) FROM cycles c JOIN recordings r ON r.id = c.recording_id "
            "WHERE c.deleted = 0 AND r.split = ? AND c.label = ?", [split, label]).fetchone()[0]
        for label in range(4)
    ]
    status = window.status_counts.text()
    shown = status.split(f"{split}: ", 1)[1].split(")", 1)[0]
    assert [int(part.split(">")[1].split("<")[0]) for part in shown.split(" / ")] == per_class

    assert window.act_undo.isEnabled() and "Undo" in window.act_undo.text()
    window.act_undo.trigger()
    assert window.project.cycle(cycle_id)["label"] == old_label
    assert int(lib.cycles.value(lib.cycles.row_of_id(cycle_id), "label")) == old_label
    window.act_redo.trigger()
    assert window.project.cycle(cycle_id)["label"] == new_label

    window.close()  # the app quits: settings saved, tasks stopped, project closed
    again = make_window()
    assert again.last_project() == str(path.resolve())
    assert again.open_project(again.last_project())
    assert again.project.cycle(cycle_id)["label"] == new_label
    history = again.project.cycle_history(cycle_id)
    assert [h["after"]["label"] for h in history[-3:]] == [new_label, old_label, new_label]
    arow = again.library.cycles.row_of_id(cycle_id)
    assert arow is not None, "the cycles table starts with the saved filters; the cycle must still be found"
    assert int(again.library.cycles.value(arow, "label")) == new_label


def test_progress_callback_accepts_the_forms_trainer_uses(qtbot):
    seen = []

    def work(progress):
        progress(3, 10)  # trainer importers and prepare_cycles
        progress(4, 10, "reading 104_1b1.wav")
        progress("writing cache")
        progress(0.5)
        return "ok"

    task = Task(work)
    task.signals.progress.connect(lambda done, total, text: seen.append((done, total, text)))
    with qtbot.waitSignal(task.signals.done, timeout=5000):
        start(task)
    qtbot.waitUntil(lambda: len(seen) == 4, timeout=2000)
    assert seen == [(3, 10, ""), (4, 10, "reading 104_1b1.wav"), (0, 0, "writing cache"), (500, 1000, "")]
    assert task.result == "ok" and task.state == "finished"


def test_qt_calls_keep_none_and_true_referenced(qtbot):
    """PySide6 6.12 on CPython < 3.12 drops a reference to None per void call and to True per emit,
    which aborts the app after some thousands of calls (none_dealloc); pyproject.toml keeps it out."""
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QLabel

    class Emitter(QObject):
        ping = Signal()

    label, emitter = QLabel(), Emitter()
    qtbot.addWidget(label)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(1000):
        label.setText("x")
        emitter.ping.emit()
    assert sys.getrefcount(None) >= none_before - 50
    assert sys.getrefcount(True) >= true_before - 50


def test_an_import_the_core_refuses_shows_its_message_without_a_traceback(make_window, qtbot, tmp_path, synth_dir, errors):
    source = tmp_path / "mine"
    source.mkdir()
    wav = sorted((synth_dir / "ICBHI_final_database").glob("*.wav"))[0]
    shutil.copy(wav, source / "a.wav")
    labels = source / "labels.csv"
    labels.write_text("file;start;end;label\na.wav;0.5;2.0;normal\n")  # semicolons: no usable header
    window = make_window()
    assert window.new_project(tmp_path / "mine.rsc")
    task = window.import_dataset("folder", source, labels_csv=labels, show_progress=False)
    with qtbot.waitSignal(task.signals.done, timeout=60000):
        pass
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    message, details = errors[0]
    assert "refused" in message and "labels.csv" in message and details is None
    assert window.project.query("SELECT count(*) AS n FROM recordings")[0]["n"] == 0
