"""The recently opened projects, kept in the app's settings, and the File > Open recent menu."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu

MAX_RECENT = 10


class RecentProjects:
    def __init__(self, settings: QSettings):
        self.settings = settings

    def paths(self) -> list[str]:
        value = self.settings.value("recent_projects", [])
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in (value or [])]

    def store(self, paths: list[str]) -> None:
        self.settings.setValue("recent_projects", paths[:MAX_RECENT])
        self.settings.sync()

    def add(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        self.store([path, *(p for p in self.paths() if p != path)])

    def remove(self, path: str | Path) -> None:
        resolved = str(Path(path).resolve())
        self.store([p for p in self.paths() if p not in (resolved, str(path))])

    def prune(self) -> list[str]:
        kept = [p for p in self.paths() if Path(p).exists()]
        self.store(kept)
        return kept

    def fill_menu(self, menu: QMenu, open_project: Callable[[str], object]) -> None:
        menu.clear()
        paths = self.prune()
        for path in paths:
            action = menu.addAction(f"{Path(path).name}  ({Path(path).parent})")
            action.triggered.connect(lambda checked=False, p=path: open_project(p))
        if not paths:
            menu.addAction("No recent projects").setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear list", lambda: self.store([]))
