"""Label review: the cycles whose stored label a teacher ensemble confidently contradicts, most confident first.

The list is :func:`trainer.results.label_review` (what ``rsc review`` prints), computed on a pool thread
with its own project connection because it reads the teachers' outputs on every split. A double-click
opens the cycle in Listen, where a relabel is an ordinary edit with history; the list then says that
labels changed since it was made.
"""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from trainer.project import Project
from trainer.results import DEFAULT_MIN_CONFIDENCE, label_review

from ..workers import Task, start
from .cycles_list import CyclesList
from .data import CompareData, best_first

LIMIT = 1000  # the most confident ones; nobody listens to more in one sitting
SPLITS = (("every split", None), ("train", "train"), ("test", "test"))


def review_task(path: str, teachers: str, min_confidence: float, split: str | None, progress=None) -> dict:
    """The review, each listed cycle with its recording id (what Listen opens)."""
    with Project.open(path) as project:
        result = label_review(project, teachers, min_confidence=min_confidence, split=split, limit=LIMIT)
        for row in result["cycles"]:
            row["recording_id"] = project.cycle(row["cycle_id"])["recording_id"]
    return result


class LabelReview(QWidget):
    def __init__(self, data: CompareData, parent=None):
        super().__init__(parent)
        self.data = data
        self.result: dict | None = None
        self.task: Task | None = None
        self.teachers = QComboBox()
        self.teachers.setMinimumWidth(220)
        self.teachers.setToolTip("The ensemble of this group's finished runs judges the labels")
        self.confidence = QDoubleSpinBox()
        self.confidence.setRange(0.25, 1.0)
        self.confidence.setSingleStep(0.05)
        self.confidence.setDecimals(2)
        self.confidence.setValue(DEFAULT_MIN_CONFIDENCE)
        self.confidence.setToolTip("List a cycle when the ensemble's probability of its own guess reaches this")
        self.split = QComboBox()
        for text, value in SPLITS:
            self.split.addItem(text, value)
        self.review_button = QPushButton("Review labels")
        self.review_button.clicked.connect(self.review)
        self.summary = QLabel("Pick a teacher group and press Review labels: the cycles it confidently "
                              "disagrees with are the likeliest annotation errors.")
        self.summary.setWordWrap(True)
        self.cycles = CyclesList(extra=("label_probability",))
        self.openCycle = self.cycles.openCycle
        row = QHBoxLayout()
        row.addWidget(QLabel("<b>Label review</b>  teachers"))
        row.addWidget(self.teachers)
        row.addWidget(QLabel("confidence at least"))
        row.addWidget(self.confidence)
        row.addWidget(QLabel("on"))
        row.addWidget(self.split)
        row.addWidget(self.review_button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.summary)
        layout.addWidget(self.cycles, 1)

    def set_choices(self) -> None:
        """Offer the groups with finished runs, hard-label teachers with the most runs first."""
        current = self.teachers.currentData()
        groups = sorted((g for g in self.data.groups if g["n"]),
                        key=lambda g: (g["targets"] != "hard", *best_first(g)))
        self.teachers.blockSignals(True)
        self.teachers.clear()
        for g in groups:
            self.teachers.addItem(f"{g['group']}  ({g['n']} runs, {g['arch']})", g["group"])
        index = self.teachers.findData(current)
        self.teachers.setCurrentIndex(index if index >= 0 else 0)
        self.teachers.blockSignals(False)

    def reset(self) -> None:
        """Another project: nothing of the last review stays, and a late answer is ignored."""
        if self.task is not None:
            self.task.cancel()
        self.task = self.result = None
        self.cycles.show_cycles([])
        self.summary.setText("Pick a teacher group and press Review labels.")

    def review(self) -> Task | None:
        teachers = self.teachers.currentData()
        if not teachers or self.data.project is None:
            return None
        if self.task is not None:
            self.task.cancel()
        self.summary.setText(f"Reading the stored outputs of {teachers} on {self.split.currentText()}...")
        task = self.task = Task(review_task, str(self.data.project.path), teachers, self.confidence.value(),
                                self.split.currentData(), name="label review")
        task.signals.finished.connect(lambda result: self._finished(task, result))
        task.signals.failed.connect(lambda exc, tb: self._failed(task, exc))
        start(task)
        return task

    def _failed(self, task: Task, exc: BaseException) -> None:
        if task is self.task:
            self.task = None
            self.summary.setText(f"<span style='color:#c62828'>{escape(str(exc))}</span>")

    def _finished(self, task: Task, result: dict) -> None:
        if task is not self.task:
            return
        self.task = None
        self.result = result
        where = f"the {result['split']} split" if result["split"] else "every split"
        more = f" (the {LIMIT} most confident shown)" if result["listed"] == LIMIT else ""
        self.summary.setText(
            f"The ensemble of {len(result['run_ids'])} runs of {escape(result['teachers'])} disagrees with the stored "
            "label "
            f"on {result['disagreeing']} of {result['n_cycles']} cycles of {where}; <b>{result['listed']}</b> with "
            f"probability at least {result['min_confidence']:.2f}{more}. Double-click one to listen and relabel it.")
        self.cycles.show_cycles(result["cycles"])

    def labels_changed(self, cycle_ids) -> None:
        """A relabel (here, in Listen, or elsewhere): say so if it touches a listed cycle."""
        if self.result is not None and set(map(int, cycle_ids)) & set(self.cycles.cycle_ids()):
            self.summary.setText(self.summary.text().split("<br>")[0]
                                 + "<br><i>Labels of listed cycles changed since: Review labels again to update.</i>")
