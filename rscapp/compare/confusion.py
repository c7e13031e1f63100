"""The confusion matrix of the selected run or ensemble, whose cells list their cycles (Edge Impulse, Orange).

Rows are the stored labels, columns the predictions (argmax of the mean stored logits), on the test
cycles the system has outputs for, with the labels as they are now. A click on a cell lists exactly the
cycles of that cell; "All misclassified" lists every cycle off the diagonal. A double-click on a listed
cycle opens it in Listen (``openCycle``).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton, QSplitter

from trainer.evaluate import confusion_matrix
from trainer.results import softmax
from trainer.results.ensembles import EnsembleOutputs
from trainer.results.views import cell_rows, row_proportions
from trainer.vocab import LABELS

from .cycles_list import CyclesList
from .data import CompareData
from .plots import INK, ChartPanel, style_plot

TICKS = [[(i + 0.5, name) for i, name in enumerate(LABELS)]]
CELL_COLORS = pg.ColorMap([0.0, 1.0], [(255, 255, 255), (21, 101, 192)])


class ConfusionPanel(ChartPanel):
    openCycle = Signal(int, int)  # recording id, cycle id

    def __init__(self, data: CompareData, parent=None):
        super().__init__("Confusion matrix", parent)
        self.data = data
        self.system_title = ""
        self.outputs: EnsembleOutputs | None = None
        self.predictions = np.zeros(0, dtype=np.int64)
        self.confusion = np.zeros((4, 4), dtype=np.int64)
        self.cell: tuple[int, int] | None = None
        self.message = ""
        self.mode = QComboBox()
        self.mode.addItems(["counts", "row proportions"])
        self.mode.currentIndexChanged.connect(lambda _: self.invalidate())
        self.misclassified = QPushButton("All misclassified")
        self.misclassified.setToolTip("List every cycle whose prediction differs from its stored label")
        self.misclassified.clicked.connect(self.list_misclassified)
        self.controls.addWidget(self.mode)
        self.controls.addWidget(self.misclassified)
        self.plot = style_plot(self.canvas.addPlot(), left="stored label", bottom="predicted")
        self.plot.showGrid(x=False, y=False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setTicks(TICKS)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(CELL_COLORS.getLookupTable(nPts=256))
        self.plot.addItem(self.image)
        self.texts = [[pg.TextItem("", anchor=(0.5, 0.5)) for _ in range(4)] for _ in range(4)]
        for r in range(4):
            for c in range(4):
                self.texts[r][c].setPos(c + 0.5, r + 0.5)
                self.plot.addItem(self.texts[r][c])
        self.outline = pg.QtWidgets.QGraphicsRectItem(0, 0, 1, 1)
        self.outline.setPen(pg.mkPen("#ff6f00", width=3))
        self.outline.setVisible(False)
        self.plot.addItem(self.outline)
        self.plot.setRange(xRange=(0, 4), yRange=(0, 4), padding=0.02)
        self.canvas.scene().sigMouseClicked.connect(self._clicked)
        self.cycles_title = QLabel("Click a cell to list its cycles; double-click a cycle to open it in Listen.")
        self.cycles = CyclesList()
        self.cycles.openCycle.connect(self.openCycle)
        # The matrix above, the cycles of the chosen cell below.
        self.layout().removeWidget(self.canvas)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.canvas)
        lower = pg.QtWidgets.QWidget()
        lower_layout = pg.QtWidgets.QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.cycles_title)
        lower_layout.addWidget(self.cycles)
        splitter.addWidget(lower)
        splitter.setSizes([420, 260])
        self.layout().addWidget(splitter, 1)

    def set_system(self, title: str, outputs: EnsembleOutputs | str | None) -> None:
        """Show a run or an ensemble; an error text or None (outputs still being read) says so instead."""
        self.system_title = title
        self.outputs = outputs if isinstance(outputs, EnsembleOutputs) else None
        self.message = outputs if isinstance(outputs, str) else ("reading stored outputs..." if title else "")
        self.invalidate()

    def draw(self) -> None:
        outputs = self.outputs
        if outputs is None:
            self.predictions = np.zeros(0, dtype=np.int64)
            self.confusion = np.zeros((4, 4), dtype=np.int64)
        else:
            self.predictions = outputs.predictions()
            self.confusion = confusion_matrix(outputs.labels, self.predictions)
        shares = row_proportions(self.confusion)
        self.image.setImage(shares, levels=(0.0, 1.0), autoLevels=False)
        self.image.setRect(QRectF(0, 0, 4, 4))  # after the image: the rect scales the pixels it has
        proportions = self.mode.currentIndex() == 1
        for r in range(4):
            for c in range(4):
                text = f"{shares[r, c]:.2f}" if proportions else str(int(self.confusion[r, c]))
                self.texts[r][c].setText(text if outputs is not None else "", color="w" if shares[r, c] > 0.55 else INK)
        if outputs is None:
            self.title.setText(f"<b>Confusion matrix</b> {self.system_title}")
            self.note.setText(self.message or "Select a run, a group or an ensemble in the table.")
        else:
            correct = int(np.trace(self.confusion))
            self.title.setText(f"<b>Confusion matrix: {self.system_title}</b>")
            self.note.setText(f"{len(outputs.cycle_ids)} test cycles, {correct} right, "
                              f"{len(outputs.cycle_ids) - correct} misclassified; rows: stored label, "
                              "columns: prediction")
        if self.cell is not None and outputs is not None:
            self.select_cell(*self.cell)
        else:
            self._clear_cycles()

    # -- cells ------------------------------------------------------------------------------------------
    def _clicked(self, event) -> None:
        if self.outputs is None or event.button() != Qt.MouseButton.LeftButton:
            return
        box = self.plot.getViewBox()
        if not box.sceneBoundingRect().contains(event.scenePos()):
            return
        point = box.mapSceneToView(event.scenePos())
        row, col = math.floor(point.y()), math.floor(point.x())
        if 0 <= row < 4 and 0 <= col < 4:
            self.select_cell(row, col)

    def cell_center(self, row: int, col: int):
        """Where the middle of a cell is on the canvas's viewport (for a click in tests)."""
        scene = self.plot.getViewBox().mapViewToScene(pg.QtCore.QPointF(col + 0.5, row + 0.5))
        return self.canvas.mapFromScene(scene)

    def select_cell(self, row: int, col: int) -> None:
        """List the cycles labelled ``row`` and predicted ``col``."""
        self.cell = (row, col)
        self.outline.setRect(col, row, 1, 1)
        self.outline.setVisible(True)
        chosen = cell_rows(self.outputs.labels, self.predictions, row, col)
        what = "correct" if row == col else "misclassified"
        self.cycles_title.setText(f"{len(chosen)} cycles labelled {LABELS[row]} and predicted {LABELS[col]} ({what})")
        self.cycles.show_cycles(self._rows(chosen))

    def list_misclassified(self) -> None:
        if self.outputs is None:
            return
        self.cell = None
        self.outline.setVisible(False)
        chosen = np.flatnonzero(self.outputs.labels != self.predictions)
        self.cycles_title.setText(f"{len(chosen)} misclassified cycles of {self.system_title}")
        self.cycles.show_cycles(self._rows(chosen))

    def _clear_cycles(self) -> None:
        self.outline.setVisible(False)
        self.cycles_title.setText("Click a cell to list its cycles; double-click a cycle to open it in Listen.")
        self.cycles.show_cycles([])

    def _rows(self, chosen: np.ndarray) -> list[dict]:
        outputs, cycles = self.outputs, self.data.cycles
        at = cycles.rows(outputs.cycle_ids[chosen])
        probabilities = softmax(outputs.mean_logits[chosen])
        guesses = self.predictions[chosen]
        return [{"cycle_id": int(outputs.cycle_ids[i]), "recording_id": int(cycles.recording_ids[j]),
                 "recording": cycles.recordings[j], "start": float(cycles.starts[j]), "end": float(cycles.ends[j]),
                 "label": int(outputs.labels[i]), "predicted": int(g), "probability": float(p[g])}
                for i, j, g, p in zip(chosen, at, guesses, probabilities)]
