"""Listen's dialogs: export and import a recording's label file, and name a spectrogram preset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from trainer.labelfiles import EXTENSIONS, FORMAT_NAMES, FORMATS, LabelError, detect_format, read_text

if TYPE_CHECKING:
    from .view import ListenView


def export_dialog(view: "ListenView") -> None:
    if view.recording is None:
        return
    filters = [FORMAT_NAMES[f] for f in FORMATS]
    default = str(Path.home() / f"{view.recording['name']}.txt")
    path, chosen = QFileDialog.getSaveFileName(view, "Export cycle labels", default, ";;".join(filters))
    if not path:
        return
    fmt = FORMATS[filters.index(chosen)] if chosen in filters else None
    if fmt and not Path(path).suffix:
        path += EXTENSIONS[fmt]
    view.export_labels(path, fmt)


def import_dialog(view: "ListenView") -> None:
    if view.recording is None:
        return
    filters = "Label files (*.txt *.csv *.TextGrid *.textgrid);;" + ";;".join(FORMAT_NAMES[f] for f in FORMATS)
    path, _ = QFileDialog.getOpenFileName(view, "Import cycle labels", str(Path.home()), filters)
    if not path:
        return
    try:
        fmt = detect_format(path, read_text(path))
    except LabelError as exc:
        QMessageBox.warning(view, "Import labels", str(exc))
        return
    box = QMessageBox(view)
    box.setWindowTitle("Import labels")
    box.setText(
        f"Import {Path(path).name} as {FORMAT_NAMES[fmt]} into {view.recording['name']}?\n\n"
        "Replace: the recording's current cycles are deleted (kept in the history) and the file's cycles added.\n"
        "Merge: the file's cycles are added; a cycle with the same span is relabelled."
    )
    replace = box.addButton("Replace", QMessageBox.AcceptRole)
    merge = box.addButton("Merge", QMessageBox.AcceptRole)
    box.addButton(QMessageBox.Cancel)
    box.exec()
    clicked = box.clickedButton()
    if clicked not in (replace, merge):
        return
    if not view.import_labels(path, fmt, "replace" if clicked is replace else "merge"):
        QMessageBox.warning(view, "Import labels", view.status.text() + "\n\nNothing was changed.")


def save_preset_dialog(view: "ListenView") -> None:
    name, ok = QInputDialog.getText(view, "Save spectrogram preset", "Preset name:")
    if ok and name.strip():
        view.save_preset(name)
