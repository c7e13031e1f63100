"""The runs table: teacher groups, student groups and ensembles, each group with its seeds below it.

Groups show the mean and sample standard deviation over finished seeds of Sp, Se and Score, and of the
same three for normal against abnormal (2-class: an abnormal cycle called any abnormal class is a hit;
a run stored without them gets them from its confusion matrix), written as ``rsc report`` writes them
(``trainer.results.render``), and the protocol that chose each checkpoint;
test-selected checkpoints read ``test*`` and are marked optimistic. Ensembles fill in as their groups'
stored outputs arrive. Items are keys the rest of the view understands: ("group", name), ("run", id),
("ensemble", group, k).
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem

from trainer.evaluate import two_class_of
from trainer.results import TEST_SELECTION_NOTE
from trainer.results.render import cost_text, targets_label

from .data import CompareData

COLUMNS = ("Name", "Arch", "Targets", "n", "Sp", "Se", "Score", "2-class Sp", "2-class Se", "2-class Score",
           "Selection", "Teachers")
WIDTHS = (172, 44, 100, 24, 96, 96, 96, 96, 96, 96, 60, 100)
SELECTION = COLUMNS.index("Selection")
TWO_CLASS_TIP = "Normal against abnormal: an abnormal cycle predicted as any abnormal class is a hit"
METRICS = ("sp", "se", "score")
OPTIMISTIC = QColor("#e65100")
SECTIONS = (("teachers", "Teachers (hard labels)"), ("students", "Students (soft labels)"), ("ensembles", "Ensembles"))
KEY = Qt.ItemDataRole.UserRole


def mean_std_text(stat: dict | None) -> str:
    """A mean ± std as the report's Markdown writes it."""
    if not stat or stat.get("mean") is None:
        return "-"
    if stat.get("std") is None:
        return f"{stat['mean']:.2f}"
    return f"{stat['mean']:.2f} ± {stat['std']:.2f}"


def number_text(value) -> str:
    return "-" if value is None or value != value else f"{value:.2f}"


def two_class_texts(values: dict | None) -> list[str]:
    """2-class Sp, Se, Score cells: a group's mean ± std, or a run's or an ensemble's number; '-' if absent."""
    values = values or {}
    return [mean_std_text(values.get(k)) if isinstance(values.get(k), dict) else number_text(values.get(k))
            for k in METRICS]


def selection_text(value, flagged: bool) -> str:
    if flagged:
        return "test*" if value == "test" else f"{value} (some test*)"
    return str(value) if value is not None else "-"


def targets_text(group: dict) -> str:
    """What a group learnt from, as `rsc report` names it; "student" is left out, as the students' section says it."""
    return targets_label(group)


class RunsTable(QTreeWidget):
    selectionChanged = Signal(object)  # the selected keys, in table order

    def __init__(self, data: CompareData, parent=None):
        super().__init__(parent)
        self.data = data
        self.items: dict[tuple, QTreeWidgetItem] = {}
        self.sections: dict[str, QTreeWidgetItem] = {}
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(list(COLUMNS))
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAlternatingRowColors(True)
        self.setUniformRowHeights(True)  # never measures every row
        self.setRootIsDecorated(True)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # sweep groups differ at the end of their names
        header = self.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for col, width in enumerate(WIDTHS):
            self.setColumnWidth(col, width)
        self.itemSelectionChanged.connect(lambda: self.selectionChanged.emit(self.selected_keys()))
        data.groupsChanged.connect(self.rebuild)
        data.outputsChanged.connect(self.update_ensembles)

    # -- filling ------------------------------------------------------------------------------------
    def rebuild(self) -> None:
        """All rows again from the data's groups; the selection and the open groups are kept."""
        selected, expanded = self.selected_keys(), {k for k, item in self.items.items() if item.isExpanded()}
        scrolled = self.verticalScrollBar().value()
        self.blockSignals(True)
        self.clear()
        self.items = {}
        self.sections = {}
        for key, title in SECTIONS:
            section = QTreeWidgetItem(self, [title])
            section.setFirstColumnSpanned(True)
            section.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = section.font(0)
            font.setBold(True)
            section.setFont(0, font)
            section.setExpanded(True)
            self.sections[key] = section
        for group in sorted(self.data.groups, key=lambda g: g["targets"] == "soft"):  # in the order shown
            self._add_group(group)
        # Teacher ensembles first, then the students' (second generation), as in the paper.
        for group in sorted(self.data.groups, key=lambda g: g["kind"] == "student"):
            if group["n"] >= 2:
                name = group["group"]
                key = ("ensemble", name, group["n"])
                self._item(self.sections["ensembles"], key, [f"{name}++", str(group["arch"])])
        self.update_ensembles(None)
        for key in expanded & self.items.keys():
            self.items[key].setExpanded(True)
        self.blockSignals(False)
        self.select_rows([k for k in selected if k in self.items], emit=False)
        self.verticalScrollBar().setValue(scrolled)
        self.selectionChanged.emit(self.selected_keys())

    def _add_group(self, group: dict) -> None:
        section = self.sections["students" if group["targets"] == "soft" else "teachers"]
        name = group["group"]
        flagged = group["test_selection"]
        item = self._item(section, ("group", name), [
            name, str(group["arch"]), targets_text(group), str(group["n"]), mean_std_text(group["sp"]),
            mean_std_text(group["se"]), mean_std_text(group["score"]), *two_class_texts(group.get("two_class")),
            selection_text(group["selection"], flagged), group["teacher_group"] or "-"])
        if flagged:
            self._optimistic(item)
        item.setToolTip(1, cost_text(group))
        for run in self.data.finished_runs(name):
            metrics = run.metrics
            self._item(item, ("run", run.id), [
                run.id, run.arch, f"seed {run.seed}", "1", number_text(metrics.get("sp")),
                number_text(metrics.get("se")), number_text(metrics.get("score")),
                *two_class_texts(two_class_of(metrics)), selection_text(metrics.get("selection"), metrics.get("selection") == "test"), ""])
        for run_id, status in group["not_finished"].items():
            child = self._item(item, ("run", run_id), [f"{run_id}  ({status})", "", "", "0"])
            child.setForeground(0, QBrush(QColor("#9e9e9e")))

    def _item(self, parent, key: tuple, texts: list[str]) -> QTreeWidgetItem:
        item = QTreeWidgetItem(parent, texts)
        item.setData(0, KEY, key)
        for col in range(3, len(COLUMNS) - 1):
            item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for col in range(SELECTION - 3, SELECTION):
            item.setToolTip(col, TWO_CLASS_TIP)
        self.items[key] = item
        return item

    @staticmethod
    def _optimistic(item: QTreeWidgetItem) -> None:
        item.setForeground(SELECTION, QBrush(OPTIMISTIC))
        item.setToolTip(SELECTION, TEST_SELECTION_NOTE)

    def update_ensembles(self, names) -> None:
        """The ensemble rows of the groups whose outputs arrived or changed (all when ``names`` is None)."""
        for group in self.data.groups:
            name = group["group"]
            top = self.items.get(("ensemble", name, group["n"]))
            if top is None or (names is not None and name not in names):
                continue
            rows = self.data.ensembles(name)
            if rows is None:
                top.setText(2, "reading...")
                top.setToolTip(2, "Reading the group's stored outputs (logits) in the background")
                continue
            wanted = {("ensemble", name, row["k"]) for row in rows if not row.get("all", True)}
            for i in reversed(range(top.childCount())):
                if top.child(i).data(0, KEY) not in wanted:
                    self.items.pop(top.takeChild(i).data(0, KEY), None)
            for row in rows:
                key = ("ensemble", name, row.get("k"))
                item = top if row.get("all", True) else self.items.get(key) or self._item(top, key, [])
                self._fill_ensemble(item, group, row)

    def _fill_ensemble(self, item: QTreeWidgetItem, group: dict, row: dict) -> None:
        name = group["group"]
        if "error" in row:
            item.setText(2, "no ensemble")
            item.setToolTip(0, row["error"])
            item.setToolTip(2, row["error"])
            return
        label = f"{name}++" if row["all"] else f"first {row['k']} of {name}"
        what = "2nd generation" if row["generation"] == 2 else "ensemble"  # of students; of teachers (n: how many)
        texts = [label, str(row["arch"]), what,
                 str(row["k"]), number_text(row["sp"]), number_text(row["se"]), number_text(row["score"]),
                 *two_class_texts(row.get("two_class")),
                 "test*" if row["test_selection"] else selection_text(group["selection"], False),
                 group["teacher_group"] or "-"]
        for col, text in enumerate(texts):
            item.setText(col, text)
        item.setToolTip(0, f"argmax of the mean stored logits of {' '.join(row['run_ids'])} "
                           f"on {row['n_cycles']} cycles")
        if row["test_selection"]:
            self._optimistic(item)

    # -- selection ------------------------------------------------------------------------------------
    def selected_keys(self) -> list[tuple]:
        keys = [item.data(0, KEY) for item in self.selectedItems()]
        order = {key: i for i, key in enumerate(self.items)}
        return sorted((k for k in keys if k is not None), key=lambda k: order.get(k, 0))

    def select_rows(self, keys, emit: bool = True) -> None:
        """Select exactly these keys (the first one current); emits selectionChanged once."""
        self.blockSignals(True)
        model = self.selectionModel()
        model.clearSelection()
        for i, key in enumerate(keys):
            item = self.items.get(tuple(key))
            if item is None:
                continue
            index = self.indexFromItem(item)
            flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
            if i == 0:
                model.setCurrentIndex(index, flags)
            else:
                model.select(index, flags)
        self.blockSignals(False)
        if emit:
            self.selectionChanged.emit(self.selected_keys())

    def group_rows(self) -> list[tuple]:
        return [key for key in self.items if key[0] == "group"]

    def cell(self, key: tuple, column: str) -> str:
        return self.items[tuple(key)].text(COLUMNS.index(column))
