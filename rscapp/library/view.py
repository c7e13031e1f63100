"""The Library: every recording and every breathing cycle of the project, with filters and counts.

The view listens to the :class:`~rscapp.model.ProjectModel`: a relabel (here, in Listen, or by another
process) changes just the affected rows of both tables in place, and the counts above them. Its rows come
from ``trainer.project.queries``; nothing here runs SQL. The only writes start here are "Locate audio
file..." and "Check audio files" (:mod:`.relocate`).
"""

from __future__ import annotations

import json

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSplitter, QTableView, QVBoxLayout, QWidget,
)

from trainer.project.queries import cycle_rows, filter_choices, recording_rows

from ..model import ProjectModel
from ..workers import Task
from .columnar import ColumnarModel
from .counts import LibraryHeader
from .cycles_table import CyclesModel
from .filters import CycleFilters, RecordingFilters
from .menus import LibraryMenus
from .recordings_table import RecordingsModel
from .relocate import AudioFiles

# More changed rows than this and one full reload is cheaper than patching them in.
FULL_RELOAD_FROM = 2000
WELCOME = (
    "<h2>RSC Studio</h2><p>A project holds your recordings, their breathing cycles and labels, "
    "and every change made to them.<br>Start with the demo project (24 synthetic recordings "
    "with known crackles and wheezes), or open or create your own.</p>"
)


def make_table(model: ColumnarModel) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.setSortingEnabled(True)
    view.setWordWrap(False)
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    vh = view.verticalHeader()
    vh.setVisible(False)
    # Fixed row heights: the view never measures 7,000 rows.
    vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    vh.setDefaultSectionSize(22)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    header.setHighlightSections(False)
    for col, column in enumerate(model.columns):
        view.setColumnWidth(col, column.width)
    view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    return view


class LibraryView(QWidget):
    """Recordings and cycles of the open project. Double-click asks the host to open Listen there."""

    openRequested = Signal(int, int)  # recording id, cycle id (-1: none)
    statusMessage = Signal(str)

    def __init__(self, model: ProjectModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.recordings = RecordingsModel(self)
        self.cycles = CyclesModel(self)
        self.recording_filters = RecordingFilters()
        self.cycle_filters = CycleFilters()
        self.check_button = QPushButton("Check audio files")
        self.check_button.setToolTip("Look for every recording's audio file and check its size (in the background)")
        self.recordings_view = make_table(self.recordings)
        self.cycles_view = make_table(self.cycles)
        self.header = LibraryHeader()
        self.audio_files = AudioFiles(model, self)
        self.menus = LibraryMenus(self)
        # Shown while no project is open; the main window puts its New / Open / Demo buttons here.
        self.welcome = QWidget()
        self.welcome_buttons = QVBoxLayout()
        self._build_layout()
        self._connect()
        self._project_changed(model.project)

    @property
    def project(self):
        return self.model.project

    @property
    def counts(self) -> dict:
        return self.model.counts()

    # -- layout ------------------------------------------------------------------------------
    def _build_layout(self) -> None:
        welcome_layout = QVBoxLayout(self.welcome)
        welcome_layout.addStretch(1)
        hello = QLabel(WELCOME)
        hello.setAlignment(Qt.AlignmentFlag.AlignCenter)
        welcome_layout.addWidget(hello)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addLayout(self.welcome_buttons)
        row.addStretch(1)
        welcome_layout.addLayout(row)
        welcome_layout.addStretch(2)

        self.recording_filters.row.addWidget(self.check_button)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        for bar, table in ((self.recording_filters, self.recordings_view), (self.cycle_filters, self.cycles_view)):
            bar.row.addWidget(bar.shown)
            box = QWidget()
            box_layout = QVBoxLayout(box)
            box_layout.setContentsMargins(0, 0, 0, 0)
            box_layout.addWidget(bar)
            box_layout.addWidget(table)
            self.splitter.addWidget(box)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.header)
        layout.addWidget(self.welcome, 1)
        layout.addWidget(self.splitter, 1)

    def _connect(self) -> None:
        self.model.projectChanged.connect(self._project_changed)
        self.model.recordingsChanged.connect(self._recordings_changed)
        self.model.cyclesChanged.connect(self._cycles_changed)
        self.recording_filters.changed.connect(self.apply_recording_filter)
        self.cycle_filters.changed.connect(self.apply_cycle_filter)
        self.recordings_view.doubleClicked.connect(self._recording_activated)
        self.cycles_view.doubleClicked.connect(self._cycle_activated)
        self.recordings_view.activated.connect(self._recording_activated)  # Enter key
        self.cycles_view.activated.connect(self._cycle_activated)
        self.recordings_view.customContextMenuRequested.connect(self.menus.recording_menu)
        self.cycles_view.customContextMenuRequested.connect(self.menus.cycle_menu)
        self.check_button.clicked.connect(lambda: self.check_audio())
        self.audio_files.statusMessage.connect(self.statusMessage)

    # -- following the model ---------------------------------------------------------------------
    def _project_changed(self, project) -> None:
        self.audio_files.cancel()
        self.check_button.setEnabled(project is not None)
        self.welcome.setVisible(project is None)
        self.splitter.setVisible(project is not None)
        self.reload()

    def _recording_mask(self):
        return self.recording_filters.mask(self.recordings)

    def _cycle_mask(self):
        return self.cycle_filters.mask(self.cycles)

    def reload(self) -> None:
        """Read both tables again (a project opened, or too much changed to patch)."""
        project = self.project
        choices = filter_choices(project) if project is not None else {"split": [], "device": []}
        for bar in (self.recording_filters, self.cycle_filters):
            bar.set_choices("split", choices["split"])
            bar.set_choices("device", choices["device"])
        recordings = recording_rows(project) if project is not None else []
        cycles = cycle_rows(project) if project is not None else []
        self.recordings.set_arrays(self.recordings.arrays_from_rows(recordings), self._recording_mask)
        self.cycles.set_arrays(self.cycles.arrays_from_rows(cycles), self._cycle_mask)
        self._show_counts()

    def _recordings_changed(self, recording_ids) -> None:
        if len(recording_ids) > FULL_RELOAD_FROM:
            self.reload()
            return
        project, selected = self.project, self.selected_cycle_id()
        choices = filter_choices(project)
        for bar in (self.recording_filters, self.cycle_filters):
            bar.set_choices("split", choices["split"])
            bar.set_choices("device", choices["device"])
        self._update_recordings(recording_ids)
        # A cycle row shows its recording's name, patient, split and device.
        cycles = self.cycles.arrays_from_rows(cycle_rows(project, recording_ids=recording_ids))
        self.cycles.replace_where("recording_id", recording_ids, cycles, self._cycle_mask)
        if selected is not None:
            self.select_cycle(selected)
        self._show_counts()

    def _cycles_changed(self, cycle_ids, recording_ids) -> None:
        if len(cycle_ids) > FULL_RELOAD_FROM:
            self.reload()
            return
        selected = self.selected_cycle_id()
        self._update_recordings(recording_ids)  # their counts per class
        cycles = self.cycles.arrays_from_rows(cycle_rows(self.project, cycle_ids=cycle_ids))
        if self.cycles.update_rows(cycle_ids, cycles, self._cycle_mask) and selected is not None:
            self.select_cycle(selected)
        self._show_counts()

    def _update_recordings(self, recording_ids) -> None:
        selected = self.selected_recording_id()
        rows = self.recordings.arrays_from_rows(recording_rows(self.project, recording_ids))
        if self.recordings.update_rows(recording_ids, rows, self._recording_mask) and selected is not None:
            self.select_recording(selected)

    def _show_counts(self) -> None:
        self.header.show_counts(self.project.path if self.project is not None else None, self.counts)
        self.recording_filters.show_count(self.recordings)
        self.cycle_filters.show_count(self.cycles)

    # -- filters ---------------------------------------------------------------------------
    def apply_recording_filter(self, *_) -> None:
        self.recordings.set_mask(self._recording_mask())
        self.recording_filters.show_count(self.recordings)

    def apply_cycle_filter(self, *_) -> None:
        self.cycles.set_mask(self._cycle_mask())
        self.cycle_filters.show_count(self.cycles)

    def filter_state(self) -> dict:
        return self.recording_filters.state() | self.cycle_filters.state() | {"splitter": self.splitter.sizes()}

    def set_filter_state(self, state: dict | str | None) -> None:
        if isinstance(state, str):
            try:
                state = json.loads(state)
            except ValueError:
                state = None
        if not isinstance(state, dict):
            return
        self.recording_filters.set_state(state)
        self.cycle_filters.set_state(state)
        sizes = state.get("splitter")
        if isinstance(sizes, list) and len(sizes) == 2 and all(isinstance(s, int) and s > 0 for s in sizes):
            self.splitter.setSizes(sizes)
        self.apply_recording_filter()
        self.apply_cycle_filter()

    def clear_filters(self) -> None:
        self.set_filter_state({"splitter": self.splitter.sizes()})

    # -- selection and activation ---------------------------------------------------------------
    @staticmethod
    def _selected_id(view: QTableView, model: ColumnarModel) -> int | None:
        rows = view.selectionModel().selectedRows() if view.selectionModel() else []
        return model.id_at(rows[0].row()) if rows else None

    def selected_recording_id(self) -> int | None:
        return self._selected_id(self.recordings_view, self.recordings)

    def selected_cycle_id(self) -> int | None:
        return self._selected_id(self.cycles_view, self.cycles)

    def select_recording(self, recording_id: int) -> bool:
        return self._select(self.recordings_view, self.recordings, recording_id)

    def select_cycle(self, cycle_id: int) -> bool:
        return self._select(self.cycles_view, self.cycles, cycle_id)

    @staticmethod
    def _select(view: QTableView, model: ColumnarModel, ident: int) -> bool:
        row = model.row_of_id(ident)
        if row is None:
            return False
        view.selectRow(row)
        view.scrollTo(model.index(row, 0))
        return True

    def _recording_activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.openRequested.emit(self.recordings.id_at(index.row()), -1)

    def _cycle_activated(self, index: QModelIndex) -> None:
        if index.isValid():
            row = index.row()
            self.openRequested.emit(int(self.cycles.value(row, "recording_id")), self.cycles.id_at(row))

    def show_cycles_of(self, recording_id: int) -> None:
        row = self.recordings.row_of_id(recording_id)
        if row is not None:
            self.cycle_filters.search.setText(str(self.recordings.value(row, "name")))

    # -- history and audio files ----------------------------------------------------------------
    def show_history(self, cycle_id: int | None = None, recording_id: int | None = None) -> list[dict]:
        return self.menus.show_history(cycle_id=cycle_id, recording_id=recording_id)

    def locate_audio(self, recording_id: int, path: str | None = None) -> bool:
        return self.audio_files.locate(recording_id, path)

    def check_audio(self, rehash: bool = False, quiet: bool = False) -> Task | None:
        return self.audio_files.check(rehash=rehash, quiet=quiet)
