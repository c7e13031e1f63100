"""The Classify view: pick a model, add recordings, classify them off the GUI thread, read and keep the results.

Left, the model (an exported ONNX file, or a run or group of the open project) and the recordings with a
progress bar each; right, the selected recording's spectrogram with its cycles coloured by label, the
probabilities under it and the cycle table. The threshold re-labels ``uncertain`` from the probabilities
already computed, so moving it never classifies again. Results go into the project through the
:class:`~rscapp.model.ProjectModel` (one transaction per store), and out as CSV or HTML reports.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSlider, QSplitter,
    QVBoxLayout, QWidget,
)

from trainer.infer.classify import DEFAULT_THRESHOLD, UNCERTAIN
from trainer.vocab import LABELS

from ..workers import Task, start
from .files_list import FilesList
from .jobs import FileSignals, Item, classify_items, relabel
from .models import ModelChooser
from .plot import ResultPlot, spectrogram_of
from .project_side import ProjectSide
from .table import CycleTable, label_colour

AUDIO_FILTER = "Audio (*.wav *.flac *.WAV *.FLAC);;All files (*)"


def legend_html() -> str:
    swatch = "<span style='background:{0};color:{0}'>&nbsp;&nbsp;&nbsp;</span>&nbsp;{1}"
    names = (*LABELS, UNCERTAIN)
    parts = [swatch.format(label_colour(name), name) for name in names]
    parts.append("<span style='color:#ff9800'>&#9633;</span>&nbsp;disagrees")
    return "&nbsp;&nbsp;".join(parts)


class ClassifyView(QWidget):
    statusMessage = Signal(str)
    openRecording = Signal(int, int)  # recording id, cycle id (-1): the host opens it in Listen

    def __init__(self, model=None, parent=None, allow_runs: bool = True):
        super().__init__(parent)
        self.model = model  # the ProjectModel, or None in the classify-only edition
        self.chooser = ModelChooser(model, allow_runs=allow_runs)
        self.files = FilesList()
        self.plot = ResultPlot()
        self.table = CycleTable()
        self.project_side = ProjectSide(self)
        self.task: Task | None = None
        self.spectrum_task: Task | None = None
        self._spectrograms: dict[str, object] = {}
        self._running_rows: list[int] = []
        self._build()
        self._connect()
        self._update_buttons()

    # -- layout ------------------------------------------------------------------------------------
    def _button(self, text: str, slot, tip: str = "") -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda _=False: slot())
        return button

    def _build(self) -> None:
        self.add_button = self._button("Add files...", self.ask_files, "Audio files in no project (.wav, .flac); "
                                       "a label file beside one (name.txt) gives its cycles")
        self.add_project_button = self._button("Add from project...", self.project_side.ask_recordings,
                                               "Recordings of the open project, with its cycles")
        self.clear_button = self._button("Clear", self.clear, "Remove every recording from the list")
        self.classify_button = self._button("Classify", self.classify, "Classify every recording in the list")
        self.cancel_button = self._button("Cancel", self.cancel)
        self.store_button = self._button("Store in project", self.project_side.store,
                                         "Keep the results in the project (the same model's earlier ones are replaced)")
        self.csv_button = self._button("Export CSV...", lambda: self.ask_export("csv"))
        self.html_button = self._button("Export HTML...", lambda: self.ask_export("html"))
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("")  # "%v of %m recordings" once a classification starts
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, 100)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.01)
        self.threshold.setDecimals(2)
        self.threshold.setToolTip("A cycle whose top probability is below this is labelled uncertain (grey)")
        self.threshold.setValue(DEFAULT_THRESHOLD)
        self.threshold_slider.setValue(round(DEFAULT_THRESHOLD * 100))
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.legend = QLabel(legend_html())
        self.legend.setToolTip("Band colours: the predicted class; grey: uncertain (below the threshold); "
                               "an orange frame: a confident prediction that differs from the cycle's label")

        recordings = QGroupBox("Recordings")
        buttons = QHBoxLayout()
        for button in (self.add_button, self.add_project_button, self.clear_button):
            buttons.addWidget(button)
        run = QHBoxLayout()
        run.addWidget(self.classify_button)
        run.addWidget(self.cancel_button)
        run.addWidget(self.progress, 1)
        box = QVBoxLayout(recordings)
        box.addLayout(buttons)
        box.addWidget(self.files, 1)
        box.addLayout(run)
        keep = QHBoxLayout()
        for button in (self.store_button, self.csv_button, self.html_button):
            keep.addWidget(button)
        left = QWidget()
        left.setMinimumWidth(360)
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.chooser)
        column.addWidget(recordings, 1)
        column.addLayout(keep)

        top = QHBoxLayout()
        top.addWidget(QLabel("Uncertain below"))
        top.addWidget(self.threshold_slider, 1)
        top.addWidget(self.threshold)
        self.threshold_slider.setMinimumWidth(160)
        below = QHBoxLayout()
        below.addWidget(self.summary, 1)
        below.addWidget(self.legend)
        right_split = QSplitter(Qt.Orientation.Vertical)
        right_split.addWidget(self.plot)
        right_split.addWidget(self.table)
        right_split.setSizes([460, 260])
        right = QWidget()
        rlayout = QVBoxLayout(right)
        rlayout.setContentsMargins(0, 0, 0, 0)
        rlayout.addLayout(top)
        rlayout.addLayout(below)
        rlayout.addWidget(right_split, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([420, 860])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(split)

    def _connect(self) -> None:
        self.chooser.modelChanged.connect(lambda _m: self._update_buttons())
        self.chooser.statusMessage.connect(self.statusMessage)
        self.files.selectedRow.connect(self._show_row)
        self.table.cycleSelected.connect(self.plot.select)
        self.plot.cycleClicked.connect(self.table.select_cycle)
        self.threshold_slider.valueChanged.connect(lambda v: self.threshold.setValue(v / 100.0))
        self.threshold.valueChanged.connect(self.set_threshold)
        self.table.cellDoubleClicked.connect(lambda row, _c: self.project_side.open_in_listen(row))
        if self.model is not None:
            self.model.projectChanged.connect(self.project_side.project_changed)
            self.model.cyclesChanged.connect(self.project_side.cycles_changed)

    def _update_buttons(self) -> None:
        running = self.task is not None
        has_project = self.model is not None and self.model.project is not None
        results = any(r is not None for r in self.files.results)
        self.classify_button.setEnabled(not running and self.chooser.model is not None and bool(self.files.items))
        self.cancel_button.setEnabled(running)
        self.add_project_button.setVisible(self.model is not None)
        self.add_project_button.setEnabled(has_project)
        self.store_button.setVisible(self.model is not None)
        self.store_button.setEnabled(has_project and results and not running)
        selected = self.selected_result() is not None
        self.csv_button.setEnabled(selected)
        self.html_button.setEnabled(selected)
        self.clear_button.setEnabled(not running and bool(self.files.items))
        self.chooser.setEnabled(not running)

    # -- recordings --------------------------------------------------------------------------------
    def ask_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add recordings", str(Path.home()), AUDIO_FILTER)
        self.add_files(paths)

    def add_files(self, paths) -> list[int]:
        rows = [self.files.add(Item(Path(p), Path(p).name)) for p in paths]
        self._update_buttons()
        return rows

    def add_items(self, items: list[Item]) -> list[int]:
        rows = [self.files.add(item) for item in items]
        self._update_buttons()
        return rows

    def clear(self) -> None:
        if self.task is None:
            self.files.clear_all()
            self._show_row(-1)
            self._update_buttons()

    # -- classifying -------------------------------------------------------------------------------
    def classify(self, rows: list[int] | None = None) -> Task | None:
        """Classify the listed recordings (all, or ``rows``) on a pool thread; returns the task."""
        model = self.chooser.model
        if model is None or self.task is not None or not self.files.items:
            return None
        rows = list(range(len(self.files.items))) if rows is None else list(rows)
        self.files.reset_rows(rows)
        self.progress.setFormat("%v of %m recordings")
        self.progress.setRange(0, len(rows))
        self.progress.setValue(0)
        self._running_rows = rows
        signals = FileSignals(self)
        signals.started.connect(lambda i: self.files.started(rows[i]))
        signals.stepped.connect(lambda i, n: self.files.stepped(rows[i], n))
        signals.classified.connect(lambda i, result: self._classified(rows[i], result))
        signals.failed.connect(lambda i, message: self.files.failed(rows[i], message))
        project = self.model.project if self.model is not None else None
        task = Task(classify_items, model, [self.files.items[r] for r in rows], self.threshold.value(),
                    str(project.path) if project is not None else None, signals, name="classify")
        task.signals.progress.connect(lambda done, total, _text: (self.progress.setRange(0, max(1, total)),
                                                                   self.progress.setValue(done)))
        task.signals.finished.connect(lambda counts: self.statusMessage.emit(
            f"Classified {counts['done']} recording(s)" + (f"; {counts['failed']} could not be" if counts["failed"] else "")))
        task.signals.cancelled.connect(lambda: (self.files.stopped(rows), self.statusMessage.emit("Classification cancelled")))
        task.signals.failed.connect(lambda exc, _tb: self.statusMessage.emit(f"Classification stopped: {exc}"))
        task.signals.done.connect(lambda: self._task_done(task, signals))
        self.task = task
        self._update_buttons()
        start(task)
        return task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _classified(self, row: int, result) -> None:
        relabel(result, self.threshold.value())  # the threshold may have moved since the task started
        self.files.classified(row, result)
        if self.files.current_row() == row or self.files.current_row() < 0:
            self.files.selectRow(row)
            self._show_row(row)
        self._update_buttons()

    def _task_done(self, task: Task, signals: FileSignals) -> None:
        if task is self.task:
            self.task = None
            self._update_buttons()
        signals.deleteLater()

    # -- the threshold -----------------------------------------------------------------------------
    def set_threshold(self, value: float) -> None:
        """Label every kept result again for ``value`` (no model runs)."""
        value = round(float(value), 2)
        if self.threshold.value() != value:
            self.threshold.setValue(value)
            return
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(round(value * 100))
        self.threshold_slider.blockSignals(False)
        for row, result in enumerate(self.files.results):
            if result is not None:
                relabel(result, value)
                self.files.show_result(row)
        self._show_row(self.files.current_row(), keep_spectrogram=True)

    # -- the selected recording ----------------------------------------------------------------------
    def selected_result(self):
        row = self.files.current_row()
        return self.files.results[row] if 0 <= row < len(self.files.results) else None

    def _show_row(self, row: int, keep_spectrogram: bool = False) -> None:
        result = self.files.results[row] if 0 <= row < len(self.files.results) else None
        if not keep_spectrogram:
            self._load_spectrogram(result)
        selected = self.table.currentRow()
        self.table.show_result(result)
        self.plot.show_result(result, selected)
        self.summary.setText(self._summary(result))
        self._update_buttons()

    @staticmethod
    def _summary(result) -> str:
        if result is None:
            return ""
        counts: dict[str, int] = {}
        for cycle in result.cycles:
            counts[cycle.label] = counts.get(cycle.label, 0) + 1
        disagree = sum(c.disagrees for c in result.cycles)
        text = ", ".join(f"{n} {label}" for label, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        return f"{Path(result.path).name}: {text}" + (f"; <b>{disagree} disagree</b> with the labels" if disagree else "")

    def _load_spectrogram(self, result) -> None:
        if self.spectrum_task is not None:
            self.spectrum_task.cancel()
            self.spectrum_task = None
        if result is None:
            self.plot.set_spectrogram(None)
            return
        cached = self._spectrograms.get(result.path)
        if cached is not None:
            self.plot.set_spectrogram(cached)
            return
        self.plot.set_spectrogram(None)
        task = Task(spectrogram_of, result.path, name="classify spectrogram")
        self.spectrum_task = task
        task.signals.finished.connect(lambda spec: self._spectrogram_ready(task, result.path, spec))
        start(task)

    def _spectrogram_ready(self, task: Task, path: str, spec) -> None:
        if len(self._spectrograms) > 16:
            self._spectrograms.clear()
        self._spectrograms[path] = spec
        if task is self.spectrum_task:
            self.spectrum_task = None
            self.plot.set_spectrogram(spec)
            self.plot.show_result(self.plot.result, self.plot.selected)

    # -- reports -------------------------------------------------------------------------------------
    def ask_export(self, kind: str) -> None:
        result = self.selected_result()
        if result is None:
            return
        suggested = str(Path(result.path).with_suffix(f".classified.{kind}"))
        name = "CSV (*.csv)" if kind == "csv" else "HTML (*.html)"
        path, _ = QFileDialog.getSaveFileName(self, f"Export the {kind.upper()} report", suggested, name)
        if path:
            self.export_report(kind, path)

    def export_report(self, kind: str, path: str | Path, result=None) -> Path | None:
        """Write the selected (or given) result as a CSV or HTML report; returns the path, None on failure."""
        result = result if result is not None else self.selected_result()
        if result is None:
            return None
        try:
            from trainer.infer.report import write_csv_report, write_html_report

            if kind == "csv":
                write_csv_report(result, path)
            else:  # the report reads the audio for its spectrogram (and says so on the page if it cannot)
                write_html_report(result, path, card=getattr(self.chooser.model, "card", None))
        except (ImportError, OSError, ValueError) as exc:
            self.statusMessage.emit(f"Could not write {path}: {exc}")
            return None
        self.statusMessage.emit(f"Wrote {path}")
        return Path(path)
