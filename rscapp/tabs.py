"""The main window's views as tabs, in order, with the View menu's action for each (Ctrl+1, Ctrl+2, ...).

Each view is an attribute of the window (``window.library``, ``window.listen``, ...) and gets the
window's :class:`~rscapp.model.ProjectModel`; the window wires their signals.
"""

from __future__ import annotations

from PySide6.QtWidgets import QTabWidget

from .classify import ClassifyView
from .compare import CompareView
from .library import LibraryView
from .listen import ListenView
from .train import TrainView

# attribute, tab title, View menu text
TABS = (("library", "Library", "&Library"), ("listen", "Listen", "Li&sten"), ("train", "Train", "&Train"),
        ("compare", "Compare", "&Compare"), ("classify", "Classify", "Cl&assify"))


def build_tabs(window) -> QTabWidget:
    """Make the views (as the window's attributes) and the tab widget that holds them."""
    window.library = LibraryView(window.model)
    window.listen = ListenView(window.model, window)
    window.train = TrainView(window.model)
    window.compare = CompareView(window.model)
    window.classify = ClassifyView(window.model)
    tabs = QTabWidget()
    tabs.setDocumentMode(True)
    for attribute, title, _menu in TABS:
        tabs.addTab(getattr(window, attribute), title)
    return tabs


def build_tab_actions(window) -> list:
    """``window.act_<view>`` for each tab (Ctrl+<its number>); returns them in tab order."""
    actions = []
    for number, (attribute, _title, menu) in enumerate(TABS, 1):
        view = getattr(window, attribute)
        action = window._action(menu, lambda v=view: window.tabs.setCurrentWidget(v), f"Ctrl+{number}")
        setattr(window, f"act_{attribute}", action)
        actions.append(action)
    return actions
