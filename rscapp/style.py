"""Colours, fonts and the application style shared by every view.

The label colours are part of the vocabulary of the app: the Library, the Listen view's cycle track
and the Compare view's confusion matrices all use the same four, so a user learns them once.
"""

from __future__ import annotations

from pathlib import Path

from trainer.vocab import LABELS

# Label name (trainer.vocab.LABELS) -> colour.
LABEL_COLORS: dict[str, str] = {
    "normal": "#4caf50",
    "crackle": "#e53935",
    "wheeze": "#1e88e5",
    "both": "#8e24aa",
}

# Audio status of a recording -> (background, text) for tables; "ok" is left unstyled.
AUDIO_STATUS_COLORS: dict[str, str] = {
    "missing": "#ffcdd2",
    "changed": "#ffe0b2",
    "unreadable": "#ffcdd2",
}

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
ICON_PATH = RESOURCES / "rsc-studio.svg"
QSS_PATH = RESOURCES / "style.qss"


def label_color(label: int | str) -> str:
    """Colour of a label given as 0-3 or a name."""
    if isinstance(label, str):
        return LABEL_COLORS[label]
    return LABEL_COLORS[LABELS[int(label)]]


def qcolor(label: int | str, alpha: int = 255):
    """QColor of a label (imported lazily so this module stays importable without a display)."""
    from PySide6.QtGui import QColor

    color = QColor(label_color(label))
    color.setAlpha(alpha)
    return color


def app_icon():
    from PySide6.QtGui import QIcon

    return QIcon(str(ICON_PATH)) if ICON_PATH.exists() else QIcon()


def apply_style(app) -> None:
    """Fusion style (looks the same on every platform) plus the small stylesheet in resources/."""
    app.setStyle("Fusion")
    if QSS_PATH.exists():
        app.setStyleSheet(QSS_PATH.read_text(encoding="utf-8"))
    icon = app_icon()
    if not icon.isNull():
        app.setWindowIcon(icon)
