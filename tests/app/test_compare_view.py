"""Compare view: the runs table shows what `rsc report` prints, confusion-matrix cells list exactly their
cycles, the significance panel shows `rsc compare`'s numbers, exports write files, and the view follows
runs that finish and labels that change while it is open.

Runs are fake (no training): trainer.runs.insert_run + store_logits + finish on a copy of the demo project,
with logits made here, so every expected cycle list below is computed from those logits, not by the view.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import copy_project
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtTest import QTest

from rscapp import workers
from rscapp.compare import CompareView
from rscapp.mainwindow import MainWindow
from rscapp.compare import data as compare_data
from rscapp.compare.runs_table import COLUMNS
from rscapp.model import ProjectModel
from trainer import runs
from trainer.evaluate import icbhi_score
from trainer.project import Project
from trainer.results import build_report, compare_systems, format_p, label_review, render_csv, render_latex
from trainer.results import render_markdown

LOADED_MS = 20_000  # reading stored outputs on a pool thread; the demo's take milliseconds on a quiet machine


class Study:
    """Two teacher groups of five seeds (one of them selected on the test set) and three students."""

    def __init__(self, project: Project):
        self.project = project
        self.cycles = project.cycles()
        self.ids = [c["id"] for c in self.cycles]
        self.labels = np.array([c["label"] for c in self.cycles])
        self.test = np.array([c["split"] == "test" for c in self.cycles])
        # Three cycles whose sound says another class than their stored label: every model hears it.
        self.truth = self.labels.copy()
        test_rows, train_rows = np.flatnonzero(self.test), np.flatnonzero(~self.test)
        self.wrong = [int(test_rows[0]), int(test_rows[5]), int(train_rows[0])]
        self.truth[self.wrong] = (self.labels[self.wrong] + 1) % 4
        self.rng = np.random.default_rng(5)
        self.logits: dict[str, np.ndarray] = {}
        for seed in range(1, 6):
            self.add(f"t{seed}", "teachers", seed, 1.3)
            self.add(f"b{seed}", "teachers-b", seed, 1.0, arch="ast", select="test")
        for seed in range(1, 4):
            self.add(f"s{seed}", "students", seed, 1.5, soft=True)
        runs.insert_run(project, "s9", group="students", kind="student", arch="cnn6", seed=9,
                        spec=self.spec("students", 9, "cnn6", "val", soft=True))

    @staticmethod
    def spec(group, seed, arch, select, soft):
        targets = ({"kind": "soft", "mode": "mean", "k": 5, "teacher_group": "teachers", "temperature": 1.0,
                    "hard_weight": 0.0} if soft else {"kind": "hard"})
        return {"arch": arch, "seed": seed, "group": group, "epochs": 3, "lr": 1e-3 if soft else 2e-3,
                "select": select, "targets": targets}

    def add(self, run_id, group, seed, quality, arch="cnn6", select="val", soft=False, project=None):
        project = project or self.project
        runs.insert_run(project, run_id, group=group, kind="student" if soft else "teacher", arch=arch, seed=seed,
                        spec=self.spec(group, seed, arch, select, soft), status=runs.RUNNING)
        logits = (self.rng.normal(size=(len(self.ids), 4)) + quality * np.eye(4)[self.truth]).astype(np.float32)
        logits[self.wrong] += 4.0 * np.eye(4, dtype=np.float32)[self.truth[self.wrong]]
        final = icbhi_score(self.labels[self.test], logits[self.test].argmax(axis=1))
        for epoch in (1, 2, 3):
            runs.record_epoch(project, run_id, epoch, {"epoch": epoch, "score": final["score"] * epoch / 3,
                                                       "sp": final["sp"], "se": final["se"], "loss": 1.0 / epoch})
        with project.transaction():
            runs.store_logits(project, run_id, self.ids, logits)
            runs.finish(project, run_id, checkpoint=None, epoch=3,
                        metrics={"sp": final["sp"], "se": final["se"], "score": final["score"], "selection": select})
        self.logits[run_id] = logits

    def predictions(self, run_ids):
        """Test cycles by id with their current labels, and the argmax of the runs' mean logits, by hand."""
        current = {c["id"]: c["label"] for c in self.project.cycles(split="test")}
        order = sorted(current)
        rows = [self.ids.index(cid) for cid in order]
        mean = np.mean([self.logits[r][rows].astype(np.float64) for r in run_ids], axis=0)
        return np.array(order), np.array([current[c] for c in order]), mean.argmax(axis=1)


def open_view(qtbot, project):
    model = ProjectModel()
    view = CompareView(model)
    view.resize(1500, 900)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    model.set_project(project)
    wait_loaded(qtbot, view)
    return model, view


def wait_loaded(qtbot, view):
    qtbot.waitUntil(lambda: not view._refresh_pending and not view.data.stale, timeout=LOADED_MS)
    qtbot.waitUntil(lambda: not view.data.is_loading and not view.data.missing(), timeout=LOADED_MS)


@pytest.fixture
def study(tmp_path, demo_copy):
    project = Project.open(demo_copy(tmp_path / "p"))
    yield Study(project)
    workers.cancel_all(wait=10.0)
    project.close()


@pytest.fixture(scope="module")
def shared(demo_template, tmp_path_factory):
    """One study for the tests that only read."""
    project = Project.open(copy_project(demo_template, tmp_path_factory.mktemp("compare-view") / "study.rsc"))
    yield Study(project)
    workers.cancel_all(wait=10.0)
    project.close()


@pytest.fixture
def opened(qtbot, shared):
    model, view = open_view(qtbot, shared.project)
    yield shared, model, view
    model.set_project(None)
    workers.cancel_all(wait=10.0)


def markdown_rows(text: str, heading: str) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index(heading) + 4  # the heading, a blank line, the head and the rule
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


# -- the runs table ---------------------------------------------------------------------------------------
def test_the_runs_table_shows_the_numbers_rsc_report_prints(opened):
    study, _, view = opened
    table = view.runs_table
    text = render_markdown(build_report(study.project))
    groups = markdown_rows(text, "## Runs by group (mean ± std over seeds)")
    assert {row[0] for row in groups} == {"teachers", "teachers-b", "students"}
    shown = ("n", "Sp", "Se", "Score", "2-class Sp", "2-class Se", "2-class Score", "Selection")
    for name, _arch, _kind, _teachers, _params, _macs, *numbers, _runs in groups:
        assert [table.cell(("group", name), c) for c in shown] == numbers
    assert table.cell(("group", "teachers-b"), "Selection") == "test*"  # picked on the test set: optimistic
    selection = COLUMNS.index("Selection")
    assert table.items[("group", "teachers-b")].toolTip(selection).startswith("test*: checkpoint epoch picked on the test set")
    assert table.cell(("group", "students"), "n") == "3"  # the queued fourth run is listed, not counted
    assert table.cell(("run", "s9"), "Name") == "s9  (queued)"

    ensembles = markdown_rows(text, "## Ensembles (argmax of the mean stored logits, first k runs by seed)")
    assert len(ensembles) == 3 + 3 + 2  # k = 1, 3, 5 of each teacher group; k = 1, 3 of the students
    for name, _arch, k, *numbers, _cycles, _runs in ensembles:
        group = name.split("++")[0]
        key = ("ensemble", group, int(k.split()[0]))
        assert [table.cell(key, c) for c in shown[1:-1]] == numbers, name
    assert table.cell(("ensemble", "teachers-b", 5), "Selection") == "test*"


def test_the_csv_and_latex_exports_equal_rsc_report(opened, tmp_path):
    study, _, view = opened
    report = build_report(study.project)
    csv_path = view.export("csv", tmp_path / "report.csv")
    tex_path = view.export("tex", tmp_path / "report.tex")
    assert csv_path.read_text(encoding="utf-8") == render_csv(report)
    assert tex_path.read_text(encoding="utf-8") == render_latex(report)


def test_the_settings_diff_lists_only_the_settings_that_differ(opened):
    _, _, view = opened
    view.runs_table.select_rows([("run", "t1"), ("run", "s2")])
    assert view.settings.keys() == ["group", "lr", "seed", "targets.hard_weight", "targets.k", "targets.kind",
                                    "targets.mode", "targets.teacher_group", "targets.temperature"]
    view.runs_table.select_rows([("group", "teachers")])  # a group: its five runs, which differ by seed only
    assert view.settings.keys() == ["seed"]
    assert view.settings.table.columnCount() == 5


# -- confusion matrix ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, run_ids", [(("group", "teachers"), ["t1", "t2", "t3", "t4", "t5"]),
                                          (("ensemble", "teachers", 3), ["t1", "t2", "t3"]),
                                          (("run", "s2"), ["s2"])])
def test_a_click_in_a_confusion_matrix_cell_lists_exactly_its_misclassified_cycles(opened, qtbot, key, run_ids):
    study, _, view = opened
    panel = view.confusion
    view.tabs.setCurrentWidget(panel)
    view.runs_table.select_rows([key])
    ids, labels, predicted = study.predictions(run_ids)
    expected_counts = np.zeros((4, 4), dtype=int)
    np.add.at(expected_counts, (labels, predicted), 1)
    assert panel.confusion.tolist() == expected_counts.tolist()
    assert [[panel.texts[r][c].textItem.toPlainText() for c in range(4)] for r in range(4)] == \
        expected_counts.astype(str).tolist()
    cells = [(r, c) for r in range(4) for c in range(4) if r != c and expected_counts[r, c]]
    assert cells, "the fake runs should make some mistakes"
    for row, col in cells[:3]:
        QTest.mouseClick(panel.canvas.viewport(), Qt.MouseButton.LeftButton, pos=panel.cell_center(row, col))
        assert panel.cell == (row, col)
        assert panel.cycles.cycle_ids() == ids[(labels == row) & (predicted == col)].tolist()
    panel.list_misclassified()
    assert panel.cycles.cycle_ids() == ids[labels != predicted].tolist()
    # A double-click on a listed cycle asks for it in Listen.
    first = panel.cycles.rows[0]
    with qtbot.waitSignal(view.openCycle) as opened_cycle:
        panel.cycles.cellDoubleClicked.emit(0, 0)
    assert opened_cycle.args == [study.project.cycle(first["cycle_id"])["recording_id"], first["cycle_id"]]


def test_the_matrix_shows_row_proportions_on_request(opened):
    study, _, view = opened
    panel = view.confusion
    view.tabs.setCurrentWidget(panel)
    view.runs_table.select_rows([("group", "students")])
    panel.mode.setCurrentIndex(1)
    counts = panel.confusion
    row = counts[1] / counts[1].sum()
    assert [panel.texts[1][c].textItem.toPlainText() for c in range(4)] == [f"{v:.2f}" for v in row]
    panel.mode.setCurrentIndex(0)


# -- significance, calibration, label review ------------------------------------------------------------------
def test_the_significance_panel_shows_the_numbers_of_compare_systems(opened, qtbot):
    study, _, view = opened
    panel = view.significance
    view.tabs.setCurrentWidget(panel)
    panel.pick("group:teachers", "group:students")
    task = panel.compare()
    qtbot.waitUntil(lambda: panel.result is not None and panel.task is None, timeout=LOADED_MS)
    assert task.state == "finished"
    expected = compare_systems(study.project, "group:teachers", "group:students")
    shown = [[panel.summary.item(r, c).text() for c in range(5)] for r in range(3)]
    a, b, d = expected["a"], expected["b"], expected["difference"]
    assert shown == [["A", f"{a['sp']:.2f}", f"{a['se']:.2f}", f"{a['score']:.2f}", f"{a['ece']:.4f}"],
                     ["B", f"{b['sp']:.2f}", f"{b['se']:.2f}", f"{b['score']:.2f}", f"{b['ece']:.4f}"],
                     ["B - A", f"{d['sp']:+.2f}", f"{d['se']:+.2f}", f"{d['score']:+.2f}", ""]]
    document = QTextDocument()
    document.setHtml(panel.tests.text())
    text = document.toPlainText()  # as the label shows it
    boot, mcnemar, seeds = expected["bootstrap"], expected["mcnemar"], expected["seeds"]
    assert f"[{boot['low']:+.2f}, {boot['high']:+.2f}]" in text
    assert f"p = {format_p(boot['p'], boot['resamples'])}" in text
    assert f"only A right on {mcnemar['a_only']} cycles, only B right on {mcnemar['b_only']}" in text
    assert f"; p = {format_p(mcnemar['p'])}" in text
    assert f"Welch p = {format_p(seeds['welch']['p'])}, permutation p = {format_p(seeds['permutation']['p'])}" in text
    for i, dimension in enumerate(("device", "chest_location", "age_group")):
        panel.dimension.setCurrentIndex(i)
        rows = expected["breakdown"][dimension]
        assert panel.breakdown.rowCount() == len(rows)
        assert [panel.breakdown.item(r, 4).text() for r in range(len(rows))] == [f"{r['a']['score']:.2f}" for r in rows]
    # A p-value below the bootstrap's resolution reads as such, not as the start of an HTML tag.
    document.setHtml("<br>".join(panel.test_lines({**expected, "bootstrap": {**boot, "p": 0.0}})))
    assert f"p = < {2 / boot['resamples']:.2g} (paired bootstrap" in document.toPlainText()
    # The reliability diagram: one curve per side, their ECE in the legend.
    names = [label.text for _, label in panel.legend.items]
    assert names == [f"A group:teachers: ECE {a['ece']:.3f}", f"B group:students: ECE {b['ece']:.3f}"]


def test_label_review_lists_the_confident_disagreements_and_opens_them(opened, qtbot):
    study, _, view = opened
    panel = view.label_review
    view.tabs.setCurrentWidget(panel)
    assert panel.teachers.currentData() in ("teachers", "teachers-b")  # hard-label groups with the most runs first
    panel.teachers.setCurrentIndex(panel.teachers.findData("teachers"))
    panel.confidence.setValue(0.5)
    panel.review()
    qtbot.waitUntil(lambda: panel.result is not None and panel.task is None, timeout=LOADED_MS)
    expected = label_review(study.project, "teachers", min_confidence=0.5)
    assert {study.ids[i] for i in study.wrong} <= {c["cycle_id"] for c in expected["cycles"]}
    assert panel.cycles.cycle_ids() == [c["cycle_id"] for c in expected["cycles"]]
    first = expected["cycles"][0]
    with qtbot.waitSignal(view.openCycle) as opened_cycle:
        panel.cycles.cellDoubleClicked.emit(0, 1)
    assert opened_cycle.args == [study.project.cycle(first["cycle_id"])["recording_id"], first["cycle_id"]]


# -- charts ----------------------------------------------------------------------------------------------------
def test_every_chart_draws_and_exports_png_and_svg(opened, tmp_path):
    _, _, view = opened
    view.runs_table.select_rows([("group", "teachers"), ("run", "s1")])
    panels = (view.curves, view.confusion, view.teacher_count, view.hard_soft, view.significance)
    for i, panel in enumerate(panels):
        view.tabs.setCurrentWidget(panel)
        png, svg = panel.export_png(tmp_path / f"{i}.png"), panel.export_svg(tmp_path / f"{i}.svg")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
        assert "<svg" in svg.read_text(encoding="utf-8")
    assert set(view.teacher_count.curves) == {"teachers", "teachers-b"}
    assert view.teacher_count.curves["teachers"]["k"] == [1, 2, 3, 4, 5]
    assert [row["soft_group"] for row in view.hard_soft.rows] == ["students"]
    # Training curves: the group's five runs with their mean and spread, and the single run.
    names = [label.text for _, label in view.curves.legend.items]
    assert names == ["teachers: mean ± std of 5 runs", "s1"]


# -- following the project -----------------------------------------------------------------------------------
def test_a_run_finished_while_the_view_is_open_appears(study, qtbot, monkeypatch):
    model, view = open_view(qtbot, study.project)
    assert ("run", "s4") not in view.runs_table.items
    # A worker's progress on a run changes nothing the table shows: it is not rebuilt (nor scrolled to the top).
    with qtbot.assertNotEmitted(view.data.groupsChanged, wait=100):
        with Project.open(study.project.path) as elsewhere:
            runs.write_progress(elsewhere, "s9", {"phase": "train", "done": 3, "total": 10})
        assert model.refresh().run_ids == ["s9"]
        wait_loaded(qtbot, view)
    with Project.open(study.project.path) as elsewhere:  # as the worker process would
        study.add("s4", "students", 4, 1.5, soft=True, project=elsewhere)
    reads = []
    original = compare_data.read_run_outputs
    monkeypatch.setattr(compare_data, "read_run_outputs",
                        lambda project, run_id, ids: reads.append(run_id) or original(project, run_id, ids))
    model.refresh()
    qtbot.waitUntil(lambda: ("run", "s4") in view.runs_table.items, timeout=LOADED_MS)
    wait_loaded(qtbot, view)
    assert reads == ["s4"]  # the other runs' outputs were kept
    report = build_report(study.project)
    students = next(g for g in report["groups"] if g["group"] == "students")
    assert view.runs_table.cell(("group", "students"), "n") == "4"
    assert view.runs_table.cell(("group", "students"), "Score") == \
        f"{students['score']['mean']:.2f} ± {students['score']['std']:.2f}"
    four = next(e for e in report["ensembles"] if e["group"] == "students" and e["k"] == 4)
    assert view.runs_table.cell(("ensemble", "students", 4), "Score") == f"{four['score']:.2f}"
    model.set_project(None)


def test_a_relabel_rescores_the_ensembles_without_reading_outputs_again(study, qtbot, monkeypatch):
    model, view = open_view(qtbot, study.project)
    reads = []
    original = compare_data.read_run_outputs
    monkeypatch.setattr(compare_data, "read_run_outputs", lambda *a, **k: reads.append(a) or original(*a, **k))
    ids, labels, predicted = study.predictions(["t1", "t2", "t3", "t4", "t5"])
    hit = int(ids[np.flatnonzero(labels == predicted)[0]])  # a right answer becomes a wrong one
    before = view.runs_table.cell(("ensemble", "teachers", 5), "Score")
    old = study.project.cycle(hit)["label"]
    model.update_cycle(hit, label=(old + 1) % 4)
    expected = next(e for e in build_report(study.project)["ensembles"] if e["group"] == "teachers" and e["k"] == 5)
    qtbot.waitUntil(lambda: view.runs_table.cell(("ensemble", "teachers", 5), "Score") == f"{expected['score']:.2f}",
                    timeout=LOADED_MS)
    assert view.runs_table.cell(("ensemble", "teachers", 5), "Score") != before
    assert reads == [] and not view.data.is_loading

    # A recording's audio status changes (an audio check): nothing to read again either.
    recording_id = study.project.cycle(hit)["recording_id"]
    with Project.open(study.project.path) as elsewhere, elsewhere.transaction():
        elsewhere.db["recordings"].update(recording_id, {"audio_status": "missing"})
    assert model.refresh().recording_ids == [recording_id]
    wait_loaded(qtbot, view)
    assert reads == [] and view.runs_table.cell(("ensemble", "teachers", 5), "Score") == f"{expected['score']:.2f}"

    # Hidden, the view does nothing until it is shown again.
    view.hide()
    model.update_cycle(hit, label=old)
    assert view.data.stale
    view.show()
    wait_loaded(qtbot, view)
    assert not view.data.stale and reads == []
    model.set_project(None)


def test_a_misclassified_cycle_opens_in_listen_from_the_main_window(qtbot, tmp_path, demo_copy):
    """The wiring the main window gets: the Compare tab, and openCycle connected to open_in_listen."""
    window = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                        data_dir=tmp_path / "data")
    window.auto_check_audio = False
    qtbot.addWidget(window)
    compare = CompareView(window.model)
    window.tabs.addTab(compare, "Compare")
    compare.openCycle.connect(window.open_in_listen)
    path = demo_copy(tmp_path / "p")
    study = Study(Project.open(path))
    window.show()
    assert window.open_project(path)
    window.tabs.setCurrentWidget(compare)
    wait_loaded(qtbot, compare)
    compare.tabs.setCurrentWidget(compare.confusion)
    compare.runs_table.select_rows([("group", "teachers")])
    compare.confusion.list_misclassified()
    first = compare.confusion.cycles.rows[0]
    ids, labels, predicted = study.predictions(["t1", "t2", "t3", "t4", "t5"])
    assert first["cycle_id"] == ids[labels != predicted][0]
    compare.confusion.cycles.cellDoubleClicked.emit(0, 0)
    assert window.tabs.currentWidget() is window.listen
    assert window.listen.current_recording_id == first["recording_id"]
    qtbot.waitUntil(lambda: window.listen.current_cycle_id == first["cycle_id"], timeout=LOADED_MS)
    window.close_project()
    workers.cancel_all(wait=10.0)
    study.project.close()
