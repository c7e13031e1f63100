"""The Listen view (pytest-qt, offscreen): open, play, relabel with keys, undo, drag, add/split/delete, label files,
and every change still there after the project is closed and opened again."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPointF, QSettings, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from rscapp.listen import ListenView
from rscapp.model import ProjectModel
from trainer.project import Project

WAIT = 15000


@pytest.fixture
def demo_path(tmp_path):
    from trainer.data.demo import create_demo_project

    path = tmp_path / "demo.rsc"
    create_demo_project(path, recordings=3, seed=2).close()
    return path


@pytest.fixture
def project(demo_path):
    project = Project.open(demo_path)
    yield project
    project.close()


@pytest.fixture(autouse=True)
def clean_settings():
    store = QSettings("RSC Studio", "RSC Studio")
    store.remove("listen")
    store.sync()
    yield


def make_view(qtbot, project):
    view = ListenView(ProjectModel())
    qtbot.addWidget(view)
    view.resize(1300, 800)
    view.show()
    qtbot.waitExposed(view)
    view.model.set_project(project)
    return view


@pytest.fixture
def view(qtbot, project):
    view = make_view(qtbot, project)
    yield view
    view.player.stop()
    view.model.set_project(None)  # before the project fixture closes it


def open_and_wait(qtbot, view, rid, cycle_id=None):
    with qtbot.waitSignal(view.spectrogramDrawn, timeout=WAIT):
        view.open_recording(rid, cycle_id)
    assert view.wave is not None and view.overlay_message is None


def key(qtbot, view, k, modifiers=Qt.NoModifier):
    qtbot.keyClick(view.graphics, k, modifiers)


def first_recording(project):
    """The 44.1 kHz recording with the most cycles (there is always one in the synthetic set)."""
    recs = sorted(project.recordings(), key=lambda r: (-(r["sample_rate"] or 0), -len(project.cycles(r["id"]))))
    return recs[0]


def test_open_a_recording_and_play_a_cycle_with_a_moving_playhead(qtbot, view, project):
    rec = first_recording(project)
    cycles = project.cycles(recording_id=rec["id"])
    open_and_wait(qtbot, view, rec["id"], cycles[1]["id"])
    assert view.current_recording_id == rec["id"] and view.current_cycle_id == cycles[1]["id"]
    assert len(view.track.regions) == len(cycles)
    assert view.spectrogram.db.shape[0] > 1000  # a 20 s recording, columns at most a few ms apart
    lo, hi = view.visible_range()
    assert lo <= cycles[1]["start"] and hi >= cycles[1]["end"]  # opened on that cycle

    key(qtbot, view, Qt.Key_Space)
    if not view.player.available:
        # no PortAudio or no device: the message says so and the view keeps working
        assert "No playback" in view.status.text()
        return
    assert view.player.is_playing
    start = cycles[1]["start"]
    qtbot.waitUntil(lambda: view.player.position > start + 0.15, timeout=WAIT)
    # the playhead follows the player in every pane, at wall-clock pace (not the null device's)
    assert all(abs(line.value() - view.player.position) < 0.2 for line in view.playheads)
    assert view.player.position < start + 3.0
    key(qtbot, view, Qt.Key_Space)
    assert not view.player.is_playing
    paused = view.player.position
    assert start < paused < cycles[1]["end"]
    # the cycle plays to its end and stops there (0.5x speed is still audible pace)
    view.speed_box.setCurrentIndex(view.speed_box.findData(2.0))
    key(qtbot, view, Qt.Key_Space)
    qtbot.waitUntil(lambda: not view.player.is_playing, timeout=WAIT)
    assert abs(view.player.position - cycles[1]["end"]) < 1e-6


def test_relabel_with_a_key_then_undo_and_redo(qtbot, view, project):
    rec = first_recording(project)
    target = next(c for c in project.cycles(recording_id=rec["id"]) if c["label"] != 2)
    open_and_wait(qtbot, view, rec["id"])
    view.select_cycle(target["id"])
    with qtbot.waitSignal(view.model.cyclesChanged, timeout=WAIT) as changed:
        key(qtbot, view, Qt.Key_3)
    assert changed.args == [[target["id"]], [rec["id"]]]
    row = project.cycle(target["id"])
    assert (row["label"], row["crackle"], row["wheeze"], row["edited"]) == (2, 0, 1, 1)
    last = project.cycle_history(cycle_id=target["id"])[-1]
    assert last["action"] == "update" and last["before"]["label"] == target["label"] and last["after"]["label"] == 2
    assert view.track.regions[target["id"]].cycle["label"] == 2

    key(qtbot, view, Qt.Key_Z, Qt.ControlModifier)
    assert project.cycle(target["id"])["label"] == target["label"]
    history = project.cycle_history(cycle_id=target["id"])
    assert history[-1]["reason"] == "undo" and history[-1]["after"]["label"] == target["label"]
    assert view.track.regions[target["id"]].cycle["label"] == target["label"]

    key(qtbot, view, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert project.cycle(target["id"])["label"] == 2
    assert len(project.cycle_history(cycle_id=target["id"])) == len(history) + 1


def drag(qtbot, view, scene_from: QPointF, scene_to: QPointF, steps: int = 8):
    """A real left-button drag through the graphics view (press, moves with the button held, release)."""
    gv = view.graphics
    start = gv.mapFromScene(scene_from)
    end = gv.mapFromScene(scene_to)
    viewport = gv.viewport()

    def send(kind, pos, buttons):
        pos = QPointF(pos)
        event = QMouseEvent(kind, pos, viewport.mapToGlobal(pos), Qt.LeftButton if kind != QEvent.MouseMove else Qt.NoButton, buttons, Qt.NoModifier)
        QApplication.sendEvent(viewport, event)

    send(QEvent.MouseButtonPress, start, Qt.LeftButton)
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        send(QEvent.MouseMove, p, Qt.LeftButton)
        qtbot.wait(5)
    send(QEvent.MouseButtonRelease, end, Qt.NoButton)


def test_dragging_a_boundary_into_the_neighbour_is_clamped_and_undoable(qtbot, view, project):
    rec = first_recording(project)
    cycles = project.cycles(recording_id=rec["id"])
    index = next(i for i in range(1, len(cycles) - 1) if cycles[i + 1]["start"] - cycles[i]["end"] > 0.05)
    left, right = cycles[index], cycles[index + 1]
    open_and_wait(qtbot, view, rec["id"], left["id"])
    view.wave_plot.setXRange(left["start"] - 0.2, right["end"] + 0.2, padding=0)
    qtbot.wait(50)
    region = view.track.regions[left["id"]]
    edge = region.lines[1]
    y = region.mapToScene(QPointF(left["end"], 0.5)).y()
    from_scene = QPointF(edge.mapToScene(QPointF(0, 0)).x(), y)
    to_scene = view.track_plot.getViewBox().mapViewToScene(QPointF((right["start"] + right["end"]) / 2, 0.5))
    with qtbot.waitSignal(view.model.cyclesChanged, timeout=WAIT):
        drag(qtbot, view, from_scene, QPointF(to_scene.x(), y))
    moved = project.cycle(left["id"])
    assert moved["end"] == pytest.approx(right["start"], abs=1e-9)  # clamped at the neighbour, no overlap
    assert moved["start"] == left["start"]
    assert project.cycle(right["id"])["start"] == right["start"]
    assert project.cycle_history(cycle_id=left["id"])[-1]["after"]["end"] == pytest.approx(right["start"])

    key(qtbot, view, Qt.Key_Z, Qt.ControlModifier)
    assert project.cycle(left["id"])["end"] == left["end"]

    # the start edge, moved by the same code path the mouse uses, snaps onto the neighbour's end when close
    before = cycles[index - 1]
    with qtbot.waitSignal(view.model.cyclesChanged, timeout=WAIT):
        view.track.drag_edge(left["id"], "start", before["end"] + view.track.seconds_per_pixel() * 3)
    assert project.cycle(left["id"])["start"] == pytest.approx(before["end"])


def test_add_split_and_delete_cycles_with_keys(qtbot, view, project):
    rec = first_recording(project)
    cycles = project.cycles(recording_id=rec["id"])
    gap = next((a["end"], b["start"]) for a, b in zip(cycles, cycles[1:]) if b["start"] - a["end"] > 0.1)
    open_and_wait(qtbot, view, rec["id"])
    view.wave_plot.setXRange(gap[0] - 0.5, gap[1] + 0.5, padding=0)
    qtbot.wait(50)
    # a mouse drag over the spectrogram makes the time selection; it runs a little into the next cycle
    vb = view.spec_plot.getViewBox()
    y = vb.mapViewToScene(QPointF(0, 1000)).y()
    a = vb.mapViewToScene(QPointF(gap[0] + 0.02, 1000)).x()
    b = vb.mapViewToScene(QPointF(gap[1] + 0.2, 1000)).x()
    drag(qtbot, view, QPointF(a, y), QPointF(b, y))
    assert view.selection is not None and view.selection[0] == pytest.approx(gap[0] + 0.02, abs=0.02)

    with qtbot.waitSignal(view.model.cyclesChanged, timeout=WAIT):
        key(qtbot, view, Qt.Key_B, Qt.ControlModifier)
    added = view.current_cycle_id
    row = project.cycle(added)
    assert row["origin"] == "user" and row["label"] == 0
    assert row["end"] == pytest.approx(gap[1])  # clipped to the free gap
    assert project.cycle_history(cycle_id=added)[0]["action"] == "create"
    assert len(project.cycles(recording_id=rec["id"])) == len(cycles) + 1

    key(qtbot, view, Qt.Key_Delete)
    assert project.cycle(added)["deleted"] == 1
    assert project.cycle_history(cycle_id=added)[-1]["action"] == "delete"
    key(qtbot, view, Qt.Key_Z, Qt.ControlModifier)
    assert project.cycle(added)["deleted"] == 0
    assert project.cycle_history(cycle_id=added)[-1]["action"] == "restore"
    key(qtbot, view, Qt.Key_Z, Qt.ControlModifier)  # undo the add: soft-deleted, history kept
    assert project.cycle(added)["deleted"] == 1
    assert len(project.cycles(recording_id=rec["id"])) == len(cycles)

    # S splits the cycle under the playhead; undo joins it again
    target = cycles[0]
    middle = (target["start"] + target["end"]) / 2
    view.player.seek(middle)
    key(qtbot, view, Qt.Key_S)
    now = project.cycles(recording_id=rec["id"])
    assert len(now) == len(cycles) + 1
    halves = [c for c in now if target["start"] - 1e-9 <= c["start"] < target["end"]]
    assert [(h["start"], h["end"]) for h in halves] == [(target["start"], middle), (middle, target["end"])]
    assert {h["label"] for h in halves} == {target["label"]}
    key(qtbot, view, Qt.Key_Z, Qt.ControlModifier)
    assert [(c["id"], c["start"], c["end"]) for c in project.cycles(recording_id=rec["id"])] == [
        (c["id"], c["start"], c["end"]) for c in cycles
    ]


def test_next_previous_and_scroll_keys(qtbot, view, project):
    rec = first_recording(project)
    cycles = project.cycles(recording_id=rec["id"])
    open_and_wait(qtbot, view, rec["id"])
    key(qtbot, view, Qt.Key_Plus)
    key(qtbot, view, Qt.Key_Plus)
    lo, hi = view.visible_range()
    assert hi - lo < 20.0 / 2
    key(qtbot, view, Qt.Key_Right)  # nothing selected: scrolls
    lo2, hi2 = view.visible_range()
    assert lo2 > lo and hi2 - lo2 == pytest.approx(hi - lo)
    view.player.seek(0.0)
    key(qtbot, view, Qt.Key_N)
    assert view.current_cycle_id == cycles[0]["id"]
    key(qtbot, view, Qt.Key_Right)
    key(qtbot, view, Qt.Key_N)
    assert view.current_cycle_id == cycles[2]["id"]
    key(qtbot, view, Qt.Key_Left)
    assert view.current_cycle_id == cycles[1]["id"]
    lo, hi = view.visible_range()
    assert lo <= cycles[1]["start"] and hi >= cycles[1]["end"]
    key(qtbot, view, Qt.Key_0)
    assert view.visible_range() == pytest.approx((0.0, rec["duration"]), abs=1e-3)
    key(qtbot, view, Qt.Key_L)
    assert view.player.loop
    key(qtbot, view, Qt.Key_F1)
    assert view.keys_overlay.isVisible() and "Ctrl+B" in view.keys_overlay.text()
    key(qtbot, view, Qt.Key_Escape)
    assert not view.keys_overlay.isVisible()


@pytest.mark.parametrize("fmt", ["icbhi", "csv", "audacity", "textgrid"])
def test_export_and_reimport_each_label_format(qtbot, view, project, tmp_path, fmt):
    rec = first_recording(project)
    open_and_wait(qtbot, view, rec["id"])
    cycles = project.cycles(recording_id=rec["id"])
    view.select_cycle(cycles[0]["id"])
    key(qtbot, view, Qt.Key_4)
    exported = [(c["start"], c["end"], c["label"]) for c in project.cycles(recording_id=rec["id"])]
    path = tmp_path / f"labels.{fmt}"
    assert view.export_labels(path, fmt)
    view.select_cycle(cycles[1]["id"])
    key(qtbot, view, Qt.Key_Delete)
    assert len(project.cycles(recording_id=rec["id"])) == len(cycles) - 1

    with qtbot.waitSignal(view.model.cyclesChanged, timeout=WAIT):
        assert view.import_labels(path, fmt, mode="replace")
    back = [(c["start"], c["end"], c["label"]) for c in project.cycles(recording_id=rec["id"])]
    assert back == [pytest.approx(e, abs=1e-6) for e in exported]
    assert len(view.track.regions) == len(exported)
    assert all(c["origin"] == "user" for c in project.cycles(recording_id=rec["id"]))
    # the import is one undo step
    key(qtbot, view, Qt.Key_Z, Qt.ControlModifier)
    assert len(project.cycles(recording_id=rec["id"])) == len(cycles) - 1
    key(qtbot, view, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert len(project.cycles(recording_id=rec["id"])) == len(exported)


def test_a_bad_label_file_changes_nothing_and_says_where(qtbot, view, project, tmp_path):
    rec = first_recording(project)
    open_and_wait(qtbot, view, rec["id"])
    before = project.cycles(recording_id=rec["id"])
    path = tmp_path / "bad.txt"
    path.write_text("0.5\t1.5\t0\t0\n1.0\t2.0\t1\t0\n")
    assert not view.import_labels(path, "icbhi")
    assert f"{path}:2:" in view.status.text() and "overlaps" in view.status.text()
    assert project.cycles(recording_id=rec["id"]) == before
    assert not view.undo_stack().canUndo()


def test_every_change_survives_closing_and_reopening(qtbot, demo_path):
    project = Project.open(demo_path)
    view = make_view(qtbot, project)
    rec = first_recording(project)
    cycles = project.cycles(recording_id=rec["id"])
    open_and_wait(qtbot, view, rec["id"], cycles[0]["id"])
    key(qtbot, view, Qt.Key_2)  # relabel cycle 0 crackle
    view.move_boundary(cycles[1]["id"], cycles[1]["start"] + 0.1, cycles[1]["end"])
    view.select_cycle(cycles[2]["id"])
    key(qtbot, view, Qt.Key_Delete)
    expected = [(c["id"], c["start"], c["end"], c["label"]) for c in project.cycles(recording_id=rec["id"])]
    view.close()
    view.model.set_project(None)
    project.close()

    reopened = Project.open(demo_path)
    try:
        view2 = make_view(qtbot, reopened)
        open_and_wait(qtbot, view2, rec["id"])
        assert [(c["id"], c["start"], c["end"], c["label"]) for c in view2.cycles] == expected
        assert reopened.cycle(cycles[0]["id"])["label"] == 1
        actions = {h["cycle_id"]: h["action"] for h in reopened.cycle_history(recording_id=rec["id"]) if h["action"] not in ("create", "import")}
        assert actions == {cycles[0]["id"]: "update", cycles[1]["id"]: "update", cycles[2]["id"]: "delete"}
        assert all(h["at"] and h["author"] for h in reopened.cycle_history(recording_id=rec["id"]))
        view2.close()
        view2.model.set_project(None)
    finally:
        reopened.close()


def test_missing_audio_still_shows_and_edits_the_cycles(qtbot, view, project):
    rec = first_recording(project)
    path = project.audio_path(rec)
    path.rename(path.with_suffix(".moved"))
    cycles = project.cycles(recording_id=rec["id"])
    view.open_recording(rec["id"])
    assert "Audio not found" in view.overlay_message and str(path) in view.overlay_message
    assert len(view.track.regions) == len(cycles)
    lo, hi = view.visible_range()
    assert hi >= cycles[-1]["end"]
    view.select_cycle(cycles[0]["id"])
    key(qtbot, view, Qt.Key_4)
    assert project.cycle(cycles[0]["id"])["label"] == 3
    key(qtbot, view, Qt.Key_Space)
    assert "Audio not found" in view.status.text()


def test_without_an_audio_device_the_view_says_so_and_keeps_working(qtbot, view, project, monkeypatch):
    from rscapp.listen import player as player_module

    class NoDevice:
        @staticmethod
        def OutputStream(**kwargs):
            raise RuntimeError("Error querying device -1")

        @staticmethod
        def query_devices(kind=None):
            raise RuntimeError("Error querying device -1")

    monkeypatch.setattr(player_module, "_sounddevice", lambda: NoDevice)
    rec = first_recording(project)
    cycles = project.cycles(recording_id=rec["id"])
    open_and_wait(qtbot, view, rec["id"], cycles[0]["id"])
    with qtbot.waitSignal(view.statusMessage, timeout=WAIT) as message:
        key(qtbot, view, Qt.Key_Space)
    assert "No playback: no audio output device" in message.args[0]
    assert not view.player.is_playing and not view.player.available
    key(qtbot, view, Qt.Key_2)
    assert project.cycle(cycles[0]["id"])["label"] == 1


def test_spectrogram_settings_and_presets(qtbot, view, project):
    rec = first_recording(project)
    open_and_wait(qtbot, view, rec["id"])
    coarse = view.spectrogram
    with qtbot.waitSignal(view.spectrogramDrawn, timeout=WAIT):
        view.window_box.setCurrentIndex(view.window_box.findData(4096))
    fine = view.spectrogram
    assert fine.db.shape[1] > coarse.db.shape[1]  # a longer window: more frequency bins below the same maximum
    view.range_box.setValue(40)
    assert view.image.levels[1] - view.image.levels[0] == pytest.approx(40)
    view.save_preset("wheeze detail")

    other = ListenView(ProjectModel())
    qtbot.addWidget(other)
    assert other.presets()["wheeze detail"].window == 4096
    assert other.spec_settings.window == 4096 and other.spec_settings.dynamic_range == 40
    assert other.preset_box.currentData() == "wheeze detail"
    assert view.remove_preset("wheeze detail") and "wheeze detail" not in view.presets()


def test_loop_plays_a_selection_again_and_again(qtbot, view, project):
    rec = first_recording(project)
    open_and_wait(qtbot, view, rec["id"])
    if not view.player.available:
        pytest.skip(f"no audio output here: {view.player.unavailable_reason}")
    key(qtbot, view, Qt.Key_L)
    view.set_selection((1.0, 1.3))
    key(qtbot, view, Qt.Key_Space)
    seen = []
    qtbot.waitUntil(lambda: seen.append(view.player.position) or (len(seen) > 2 and seen[-1] < seen[-2]), timeout=WAIT)
    assert view.player.is_playing and all(1.0 <= p <= 1.3 for p in seen)
    key(qtbot, view, Qt.Key_Escape)
    assert not view.player.is_playing


def test_opening_a_long_recording_can_be_cancelled(qtbot, view, project, tmp_path):
    import numpy as np
    import soundfile as sf

    from trainer.data.folder import import_folder

    folder = tmp_path / "long"
    folder.mkdir()
    rate = 44100
    wave = (0.1 * np.random.default_rng(0).standard_normal(150 * rate)).astype("float32")
    sf.write(folder / "long_take.wav", wave, rate)
    import_folder(project, folder)
    rec = project.recording_by_name("long_take")
    project.add_cycle(rec["id"], 10.0, 12.5)
    view.open_recording(rec["id"])
    assert view.loading and "Loading long_take" in view.overlay_message
    view.cancel_loading()
    qtbot.waitUntil(lambda: not view.loading, timeout=WAIT)
    assert view.wave is None and "Loading cancelled" in view.overlay_message
    assert len(view.track.regions) == 1  # the cycles are there to edit meanwhile

    # opened again it loads, with a spectrogram no wider than the screen needs
    open_and_wait(qtbot, view, rec["id"])
    assert len(view.wave) == len(wave) and view.spectrogram.db.shape[0] <= 4096


def test_cycle_table_selects_edits_times_and_shows_the_history(qtbot, view, project):
    rec = first_recording(project)
    cycles = project.cycles(recording_id=rec["id"])
    open_and_wait(qtbot, view, rec["id"])
    table = view.panel.table
    assert table.rowCount() == len(cycles)
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == [str(c["id"]) for c in cycles]
    table.selectRow(2)
    assert view.current_cycle_id == cycles[2]["id"]
    # the view's keys work while the table has the focus
    table.setFocus()
    key_target = table
    qtbot.keyClick(key_target, Qt.Key_2)
    assert project.cycle(cycles[2]["id"])["label"] == 1
    # typing a time moves the boundary through the same undoable command
    new_end = round(cycles[2]["end"] - 0.25, 3)
    with qtbot.waitSignal(view.model.cyclesChanged, timeout=WAIT):
        table.item(2, 2).setText(f"{new_end}")
    assert project.cycle(cycles[2]["id"])["end"] == pytest.approx(new_end)
    # a time that would overlap the next cycle is refused and the cell shows the project's value again
    table.item(2, 2).setText(f"{cycles[3]['end']}")
    assert "overlap" in view.status.text()
    assert project.cycle(cycles[2]["id"])["end"] == pytest.approx(new_end)
    assert float(view.panel.table.item(2, 2).text()) == pytest.approx(new_end)

    history = view.panel.history
    assert view.panel.tabText(1).startswith(f"History of cycle {cycles[2]['id']} (")
    changes = [history.item(r, 2).text().split(": ", 1)[1] for r in range(history.rowCount())]
    assert changes[0] == f"end {cycles[2]['end']:.3f} \u2192 {new_end:.3f} s"  # newest first
    assert any(text.startswith("label ") and text.endswith("\u2192 crackle") for text in changes)
    key(qtbot, view, Qt.Key_Z, Qt.ControlModifier)
    assert history.item(0, 2).text().startswith("update: end ") and "undo" in history.item(0, 2).toolTip()
    assert view.status.text().startswith("Undone: Move end of cycle")


def test_wheel_scrolls_ctrl_wheel_zooms_a_click_moves_the_playhead_and_autoplay(qtbot, view, project):
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent

    rec = first_recording(project)
    cycles = project.cycles(recording_id=rec["id"])
    open_and_wait(qtbot, view, rec["id"])
    view.wave_plot.setXRange(5.0, 10.0, padding=0)
    qtbot.wait(20)
    viewport = view.graphics.viewport()
    point = view.graphics.mapFromScene(view.spec_plot.getViewBox().mapViewToScene(QPointF(7.5, 1000)))

    def wheel(delta, modifiers):
        event = QWheelEvent(
            QPointF(point), QPointF(viewport.mapToGlobal(point)), QPoint(0, 0), QPoint(0, delta),
            Qt.NoButton, modifiers, Qt.NoScrollPhase, False,
        )
        QApplication.sendEvent(viewport, event)

    wheel(-120, Qt.NoModifier)  # one notch down: a tenth of the view later
    assert view.visible_range() == pytest.approx((5.5, 10.5), abs=1e-6)
    wheel(120, Qt.ControlModifier)  # Ctrl: zoom in around the mouse
    lo, hi = view.visible_range()
    assert hi - lo == pytest.approx(5.0 / 1.25, rel=1e-3)
    # the time under the mouse stays put: 8.0 s since the scroll
    assert (8.0 - lo) / (hi - lo) == pytest.approx((8.0 - 5.5) / 5.0, abs=1e-3)

    qtbot.mouseClick(viewport, Qt.LeftButton, pos=point)
    assert view.player.position == pytest.approx(8.0, abs=0.02)
    assert all(line.value() == pytest.approx(8.0, abs=0.02) for line in view.playheads)

    view.act_autoplay.setChecked(True)
    view.player.seek(0.0)
    key(qtbot, view, Qt.Key_N)
    assert view.current_cycle_id == cycles[0]["id"]
    if view.player.available:
        assert view.player.is_playing and view.player.span == (cycles[0]["start"], cycles[0]["end"])
    key(qtbot, view, Qt.Key_Escape)
    assert not view.player.is_playing


def test_zooming_into_a_long_recording_computes_a_finer_spectrogram_of_the_view(qtbot, view, project, tmp_path):
    import numpy as np
    import soundfile as sf

    from trainer.data.folder import import_folder

    folder = tmp_path / "long"
    folder.mkdir()
    rate = 22050
    sf.write(folder / "minutes.wav", (0.1 * np.random.default_rng(1).standard_normal(180 * rate)).astype("float32"), rate)
    import_folder(project, folder)
    rec = project.recording_by_name("minutes")
    open_and_wait(qtbot, view, rec["id"])
    overview = view.spectrogram
    assert overview.hop > 0.04 and not view.detail_image.isVisible()  # 4096 columns over 3 minutes
    view.wave_plot.setXRange(60.0, 62.0, padding=0)
    qtbot.waitUntil(lambda: view.detail is not None and view.detail_image.isVisible(), timeout=WAIT)
    assert view.detail.t0 <= 60.0 and view.detail.t1 >= 62.0
    assert view.detail.hop <= overview.hop / 3  # down to a quarter window, the finest worth computing
    view.wave_plot.setXRange(0.0, 180.0, padding=0)  # zoomed out again the overview is enough
    qtbot.waitUntil(lambda: not view.detail_image.isVisible(), timeout=WAIT)


def test_undo_of_an_edit_on_another_recording_shows_that_recording(qtbot, view, project):
    first, second = project.recordings()[:2]
    cycle = project.cycles(recording_id=first["id"])[0]
    open_and_wait(qtbot, view, first["id"], cycle["id"])
    key(qtbot, view, Qt.Key_4 if cycle["label"] != 3 else Qt.Key_1)
    edited = project.cycle(cycle["id"])["label"]
    open_and_wait(qtbot, view, second["id"])
    with qtbot.waitSignal(view.model.cyclesChanged, timeout=WAIT) as changed:
        key(qtbot, view, Qt.Key_Z, Qt.ControlModifier)
    assert changed.args == [[cycle["id"]], [first["id"]]]
    assert project.cycle(cycle["id"])["label"] == cycle["label"] != edited
    assert view.current_recording_id == first["id"]


def test_a_real_icbhi_recording_opens_and_exports_its_annotation_unchanged(qtbot, view, project, tmp_path, icbhi_dir):
    import shutil

    from trainer.data.folder import import_folder
    from trainer.labelfiles import parse_icbhi

    folder = tmp_path / "real"
    folder.mkdir()
    name = "101_1b1_Al_sc_Meditron"
    for suffix in (".wav", ".txt"):
        shutil.copy(icbhi_dir / "ICBHI_final_database" / f"{name}{suffix}", folder)
    import_folder(project, folder)
    rec = project.recording_by_name(name)
    original = parse_icbhi((folder / f"{name}.txt").read_text(), "original")
    open_and_wait(qtbot, view, rec["id"])
    assert len(view.track.regions) == len(original)
    assert len(view.wave) == rec["frames"] and view.rate == rec["sample_rate"]
    out = tmp_path / "exported.txt"
    assert view.export_labels(out, "icbhi")
    exported = parse_icbhi(out.read_text(), "exported")
    assert [(i.start, i.end, i.crackle, i.wheeze) for i in exported] == [
        (i.start, i.end, i.crackle, i.wheeze) for i in original
    ]
