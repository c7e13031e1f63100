"""Library view: filters agree with SQL, edits refresh counts, double-click opens Listen, relocate."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import QSettings, Qt

from rscapp import dialogs
from rscapp.library import LibraryView
from rscapp.mainwindow import MainWindow
from rscapp.model import ProjectModel
from trainer.project import Project
from trainer.project.queries import library_counts
from trainer.vocab import LABELS


@pytest.fixture
def project(tmp_path, demo_copy):
    project = Project.open(demo_copy(tmp_path / "p"))
    yield project
    project.close()


@pytest.fixture
def model(project):
    model = ProjectModel()
    model.set_project(project)
    yield model
    model.set_project(None)


@pytest.fixture
def library(qtbot, model):
    view = LibraryView(model)
    qtbot.addWidget(view)
    return view


@pytest.fixture
def errors(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(dialogs, "show_error", lambda parent, message, details=None, title="": shown.append(message))
    return shown


def sql_count(project: Project, where: str = "1", params=()) -> int:
    return project.db.execute(
        "SELECT count(*) FROM cycles c JOIN recordings r ON r.id = c.recording_id WHERE c.deleted = 0 AND " + where,
        list(params),
    ).fetchone()[0]


def set_combo(box, text: str) -> None:
    index = box.findText(text)
    assert index >= 0, f"{text!r} not offered in {[box.itemText(i) for i in range(box.count())]}"
    box.setCurrentIndex(index)


def test_tables_hold_every_recording_and_cycle(library, project):
    assert library.recordings.rowCount() == project.db["recordings"].count
    assert library.cycles.rowCount() == sql_count(project)
    counts = library_counts(project)
    stats = project.stats()
    for split in ("train", "test"):
        assert counts["cycles"][split] == stats["cycles"][split]
    assert counts["recordings"] == stats["recordings"]["total"]
    # per-class columns of the recordings table match the cycles of each recording
    model = library.recordings
    for row in range(model.rowCount()):
        rec_id = model.id_at(row)
        for label, name in enumerate(LABELS):
            assert int(model.value(row, name)) == sql_count(project, "c.recording_id = ? AND c.label = ?", [rec_id, label])


def test_cycle_filters_match_sql(library, model, project):
    # make some edits so that "edited" and "user" filters have something to find
    first = project.cycles()[:3]
    project.update_cycle(first[0]["id"], label="both")
    project.update_cycle(first[1]["id"], label="normal" if first[1]["label"] else "crackle")
    rec = project.recordings()[0]
    project.add_cycle(rec["id"], rec["duration"] - 0.5, rec["duration"] - 0.1, crackle=1, check=False)
    model.refresh()  # written past the model: it finds the three changes in the edit history
    assert library.cycles.rowCount() == sql_count(project)

    devices = [r[0] for r in project.db.execute("SELECT DISTINCT device FROM recordings ORDER BY 1")]
    checks = 0
    for label_index, label in enumerate(LABELS):
        for split in ("train", "test"):
            set_combo(library.cycle_filters.label, label)
            set_combo(library.cycle_filters.split, split)
            expected = sql_count(project, "c.label = ? AND r.split = ?", [label_index, split])
            assert library.cycles.rowCount() == expected, (label, split)
            checks += expected > 0
    assert checks >= 4, "the demo project should have cycles of most label/split pairs"
    set_combo(library.cycle_filters.label, "All")
    set_combo(library.cycle_filters.split, "All")
    for device in devices:
        set_combo(library.cycle_filters.device, device)
        assert library.cycles.rowCount() == sql_count(project, "r.device = ?", [device])
    set_combo(library.cycle_filters.device, "All")
    set_combo(library.cycle_filters.origin, "user")
    assert library.cycles.rowCount() == sql_count(project, "c.origin = 'user'") == 1
    set_combo(library.cycle_filters.origin, "All")
    library.cycle_filters.edited.setChecked(True)
    assert library.cycles.rowCount() == sql_count(project, "c.edited = 1") == 2
    library.cycle_filters.edited.setChecked(False)

    name = project.recordings()[1]["name"]
    library.cycle_filters.search.setText(name)
    assert library.cycles.rowCount() == sql_count(project, "r.name = ?", [name]) > 0
    patient = project.recordings()[1]["patient_id"]
    library.cycle_filters.search.setText(f"{patient} {devices[0].lower()}")
    assert library.cycles.rowCount() == sql_count(
        project, "(r.name LIKE ? OR r.patient_id LIKE ?) AND r.device = ?", [f"%{patient}%", f"%{patient}%", devices[0]]
    )
    library.cycle_filters.search.setText("no such recording anywhere")
    assert library.cycles.rowCount() == 0
    library.clear_filters()
    assert library.cycles.rowCount() == sql_count(project)


def test_recording_filters_and_sort(library, project):
    set_combo(library.recording_filters.split, "test")
    assert library.recordings.rowCount() == project.db.execute(
        "SELECT count(*) FROM recordings WHERE split = 'test'").fetchone()[0]
    set_combo(library.recording_filters.split, "All")
    # sort cycles by start, descending: the view's order is the SQL order
    library.cycles_view.sortByColumn(4, Qt.SortOrder.DescendingOrder)
    starts = [float(library.cycles.value(row, "start")) for row in range(library.cycles.rowCount())]
    assert starts == sorted(starts, reverse=True)
    library.cycles_view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    names = [library.cycles.value(row, "recording") for row in range(library.cycles.rowCount())]
    assert names == sorted(names)


def test_filter_state_round_trip(library, qtbot, model):
    set_combo(library.cycle_filters.label, "wheeze")
    library.cycle_filters.search.setText("Meditron")
    library.cycle_filters.edited.setChecked(True)
    state = library.filter_state()
    other = LibraryView(model)
    qtbot.addWidget(other)
    other.set_filter_state(state)
    assert other.cycle_filters.label.currentText() == "wheeze"
    assert other.cycle_filters.search.text() == "Meditron"
    assert other.cycle_filters.edited.isChecked()
    assert other.cycles.rowCount() == library.cycles.rowCount()


def test_edit_refreshes_one_recording(library, model, project):
    table = library.recordings
    rec_id = table.id_at(0)
    cycle = project.cycles(recording_id=rec_id)[0]
    new_label = 3 if cycle["label"] != 3 else 0
    before = library_counts(project)["cycles"]["all"]
    model.update_cycle(cycle["id"], label=new_label)  # the model announces it; the view asks nothing
    row = table.row_of_id(rec_id)
    assert int(table.value(row, LABELS[new_label])) == sql_count(project, "c.recording_id = ? AND c.label = ?", [rec_id, new_label])
    assert int(table.value(row, "edited")) == 1
    crow = library.cycles.row_of_id(cycle["id"])
    assert library.cycles.data(library.cycles.index(crow, 7)) == LABELS[new_label]
    assert library.cycles.data(library.cycles.index(crow, 9)) == "yes"
    after = library.counts["cycles"]["all"]
    assert after[LABELS[new_label]] == before[LABELS[new_label]] + 1
    assert library.cycles.rowCount() == sql_count(project)


def test_double_click_opens_listen_at_that_cycle(qtbot, tmp_path, demo_copy, monkeypatch):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, data_dir=tmp_path / "data")
    qtbot.addWidget(window)
    assert window.open_project(demo_copy(tmp_path / "w"))
    lib = window.library
    row = 5
    cycle_id = lib.cycles.id_at(row)
    rec_id = int(lib.cycles.value(row, "recording_id"))
    calls = []
    original = type(window.listen).open_recording
    monkeypatch.setattr(type(window.listen), "open_recording",
                        lambda self, r, c=None: (calls.append((r, c)), original(self, r, c)))
    with qtbot.waitSignal(lib.openRequested) as blocker:
        lib.cycles_view.doubleClicked.emit(lib.cycles.index(row, 2))
    assert blocker.args == [rec_id, cycle_id]
    assert calls == [(rec_id, cycle_id)]
    assert window.tabs.currentWidget() is window.listen
    # a recording row opens it without a cycle
    window.tabs.setCurrentWidget(lib)
    rec_row = lib.recordings.row_of_id(rec_id)
    lib.recordings_view.doubleClicked.emit(lib.recordings.index(rec_row, 0))
    assert calls[-1] == (rec_id, None)
    assert window.tabs.currentWidget() is window.listen
    window.close_project()


def test_missing_audio_shown_and_relocated(library, model, project, tmp_path, errors):
    rec = project.recordings()[2]
    other = project.recordings()[3]
    path = project.audio_path(rec)
    moved = tmp_path / "moved" / path.name
    moved.parent.mkdir()
    shutil.move(path, moved)
    assert project.verify_audio(rec["id"]) == "missing"
    model.refresh()
    row = library.recordings.row_of_id(rec["id"])
    index = library.recordings.index(row, 0)
    assert library.recordings.data(index, Qt.ItemDataRole.BackgroundRole) is not None, "missing audio is highlighted"
    assert library.recordings.data(library.recordings.index(row, 12)) == "missing"
    assert library.counts["audio_problems"] == 1
    assert library.header.banner.isVisibleTo(library)
    set_combo(library.recording_filters.audio, "problems")
    assert library.recordings.rowCount() == 1

    # another recording's audio is refused, with a message that says why
    assert not library.locate_audio(rec["id"], str(project.audio_path(other)))
    assert errors and rec["name"] in errors[-1] and "content differs" in errors[-1]
    assert project.recording(rec["id"])["audio_status"] == "missing"
    # a file that is not audio at all is refused too, naming the file
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 10)
    assert not library.locate_audio(rec["id"], str(junk))
    assert "junk.wav" in errors[-1]

    assert library.locate_audio(rec["id"], str(moved))
    assert project.recording(rec["id"])["audio_status"] == "ok"
    assert library.counts["audio_problems"] == 0
    assert library.recordings.rowCount() == 0  # the "problems" filter is still on
    assert not library.header.banner.isVisibleTo(library)


def test_check_audio_runs_in_background(library, project, qtbot):
    rec = project.recordings()[0]
    project.audio_path(rec).unlink()
    task = library.check_audio()
    assert task is not None
    with qtbot.waitSignal(task.signals.done, timeout=20000):
        pass
    qtbot.waitUntil(lambda: library.counts.get("audio_problems") == 1, timeout=5000)
    assert task.result == {"ok": project.db["recordings"].count - 1, "missing": 1}
    row = library.recordings.row_of_id(rec["id"])
    assert library.recordings.value(row, "audio_status") == "missing"


def test_moved_audio_found_when_the_project_opens(qtbot, tmp_path, demo_copy):
    path = demo_copy(tmp_path / "moved")
    with Project.open(path) as project:
        rec = project.recordings()[4]
        project.audio_path(rec).rename(tmp_path / "elsewhere.wav")
        assert project.recording(rec["id"])["audio_status"] == "ok"  # the project does not know yet
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, data_dir=tmp_path / "data")
    qtbot.addWidget(window)
    assert window.open_project(path)
    qtbot.waitUntil(lambda: window.library.counts.get("audio_problems") == 1, timeout=10000)
    row = window.library.recordings.row_of_id(rec["id"])
    assert window.library.recordings.value(row, "audio_status") == "missing"
    assert "1 missing audio" in window.status_counts.text()
    window.close_project()


def test_edit_history_dialog_lists_every_change(library, project, monkeypatch, qtbot):
    cycle = project.cycles()[0]
    project.update_cycle(cycle["id"], label="wheeze" if cycle["label"] != 2 else "normal")
    project.update_cycle(cycle["id"], start=cycle["start"] + 0.05)
    shown = []
    monkeypatch.setattr(dialogs, "show_history", lambda parent, title, rows: shown.append((title, rows)))
    rows = library.show_history(cycle_id=cycle["id"])
    assert shown and shown[0][0] == f"History of cycle {cycle['id']}"
    assert [r["action"] for r in rows] == ["import", "update", "update"]  # the demo cycles came in by import
    dialog = dialogs.HistoryDialog(None, "t", rows)
    qtbot.addWidget(dialog)
    changes = [dialog.table.item(r, 4).text() for r in range(dialog.table.rowCount())]
    assert changes[0].startswith("created")
    assert "\u2192" in changes[1] and ("wheeze" in changes[1] or "normal" in changes[1])
    assert f"{cycle['start']:.3f}-" in changes[2] and f"{cycle['start'] + 0.05:.3f}-" in changes[2]
    rec_rows = library.show_history(recording_id=cycle["recording_id"])
    assert len(rec_rows) == len(project.cycles(recording_id=cycle["recording_id"])) + 2


def test_sorting_keeps_the_selected_cycle_selected(library):
    library.select_cycle(library.cycles.id_at(7))
    chosen = library.selected_cycle_id()
    library.cycles_view.sortByColumn(6, Qt.SortOrder.DescendingOrder)  # by duration
    assert library.selected_cycle_id() == chosen
    durations = [float(library.cycles.value(r, "duration")) for r in range(library.cycles.rowCount())]
    assert durations == sorted(durations, reverse=True)


def test_a_relabel_changes_rows_in_place_and_keeps_filters_sort_and_selection(library, model, project, qtbot):
    cycles = project.cycles()
    chosen, other = cycles[4], cycles[9]
    library.select_cycle(chosen["id"])
    new_label = (chosen["label"] + 1) % 4
    with qtbot.assertNotEmitted(library.cycles.modelReset), qtbot.assertNotEmitted(library.recordings.modelReset):
        model.update_cycle(chosen["id"], label=new_label)
    assert library.selected_cycle_id() == chosen["id"]
    assert library.cycles.value(library.cycles.row_of_id(chosen["id"]), "label") == new_label

    # sorted by label, the relabelled cycle moves to its new place and stays selected
    library.cycles_view.sortByColumn(7, Qt.SortOrder.AscendingOrder)
    model.update_cycle(chosen["id"], label=(new_label + 2) % 4)
    labels = [int(library.cycles.value(r, "label")) for r in range(library.cycles.rowCount())]
    assert labels == sorted(labels) and library.selected_cycle_id() == chosen["id"]

    # with a label filter on, a cycle relabelled into it appears and out of it disappears
    wanted = (other["label"] + 1) % 4
    set_combo(library.cycle_filters.label, LABELS[wanted])
    model.update_cycle(other["id"], label=wanted)
    assert library.cycles.row_of_id(other["id"]) is not None
    assert library.cycles.rowCount() == sql_count(project, "c.label = ?", [wanted])
    model.update_cycle(other["id"], label=(wanted + 1) % 4)
    assert library.cycles.row_of_id(other["id"]) is None
    assert library.cycles.rowCount() == sql_count(project, "c.label = ?", [wanted])
    assert library.cycle_filters.shown.text() == f"{library.cycles.rowCount()} of {sql_count(project)}"

    # a deleted cycle leaves both tables' counts; restored, it is back
    set_combo(library.cycle_filters.label, "All")
    model.delete_cycle(other["id"])
    assert library.cycles.row_of_id(other["id"]) is None and library.cycles.rowCount() == sql_count(project)
    model.restore_cycle(other["id"])
    assert library.cycles.row_of_id(other["id"]) is not None and library.cycles.rowCount() == sql_count(project)
    row = library.recordings.row_of_id(other["recording_id"])
    assert int(library.recordings.value(row, "cycles")) == len(project.cycles(recording_id=other["recording_id"]))
    assert library.counts == library_counts(project)
