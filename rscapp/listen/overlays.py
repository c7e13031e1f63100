"""Panels over Listen's plots: the message (loading with progress and Cancel, missing audio) and the keys list."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from .keys import KEYS_HELP


class MessageOverlay(QFrame):
    cancelRequested = Signal()

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setObjectName("listenOverlay")
        self.setStyleSheet(
            "#listenOverlay { background: rgba(30,31,34,225); border: 1px solid #555; border-radius: 6px; }"
            "QLabel { color: #eeeeee; }"
        )
        box = QVBoxLayout(self)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setAlignment(Qt.AlignCenter)
        self.text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        box.addWidget(self.text)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setFocusPolicy(Qt.NoFocus)
        self.cancel_button.clicked.connect(self.cancelRequested)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        box.addLayout(row)

    def show_message(self, text: str, busy: bool = False) -> None:
        self.text.setText(text)
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.progress.setRange(0, 0)
        self.show()
        self.raise_()

    def set_progress(self, done: int, total: int, message: str = "") -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))

    @property
    def message(self) -> str | None:
        return self.text.text() if self.isVisible() else None

    def place(self, rect: QRect) -> None:
        self.setFixedWidth(max(200, min(560, rect.width() - 40)))
        self.adjustSize()
        self.move((rect.width() - self.width()) // 2, max(10, rect.height() // 2 - self.height()))


class KeysOverlay(QLabel):
    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setTextFormat(Qt.RichText)
        self.setStyleSheet(
            "QLabel { background: rgba(20,20,24,235); color: #eeeeee; border: 1px solid #777; border-radius: 6px;"
            " padding: 10px; }"
        )
        rows = "".join(f"<tr><td style='padding-right:14px'><b>{key}</b></td><td>{text}</td></tr>" for key, text in KEYS_HELP)
        self.setText(f"<b>Listen keys</b><table>{rows}</table><br><i>F1 or ? closes this list.</i>")
        self.hide()

    def place(self, rect: QRect) -> None:
        self.adjustSize()
        self.move(max(0, (rect.width() - self.width()) // 2), 12)
