"""Spectrogram presets: the built-in ones, the user's (kept in the app's settings for every project),
and the settings in use, with the spec bar's widgets that show and edit them."""

from __future__ import annotations

import json

from PySide6.QtCore import QSettings

from .spectrogram import BUILTIN_PRESETS, SpectrogramSettings

SETTINGS_ORG = SETTINGS_APP = "RSC Studio"
PRESETS_KEY = "listen/spectrogram_presets"
CURRENT_KEY = "listen/spectrogram"
DEFAULT_PRESET = "Lung sounds"


def app_settings() -> QSettings:
    return QSettings(SETTINGS_ORG, SETTINGS_APP)


class PresetStore:
    """The presets and the current settings as the app's settings hold them (JSON under two keys)."""

    def __init__(self, store: QSettings):
        self.store = store

    def current(self) -> SpectrogramSettings:
        raw = self.store.value(CURRENT_KEY)
        if raw:
            try:
                return SpectrogramSettings.from_dict(json.loads(raw))
            except (TypeError, ValueError):
                pass
        return BUILTIN_PRESETS[DEFAULT_PRESET]

    def set_current(self, settings: SpectrogramSettings) -> None:
        self.store.setValue(CURRENT_KEY, settings.to_json())

    def user(self) -> dict:
        raw = self.store.value(PRESETS_KEY)
        try:
            return dict(json.loads(raw)) if raw else {}
        except (TypeError, ValueError):
            return {}

    def all(self) -> dict[str, SpectrogramSettings]:
        """Built-in presets, then the user's (a user preset may replace a built-in of the same name)."""
        out = dict(BUILTIN_PRESETS)
        try:
            for name, data in self.user().items():
                out[name] = SpectrogramSettings.from_dict(data)
        except (TypeError, ValueError, AttributeError):
            pass
        return out

    def save(self, name: str, settings: SpectrogramSettings) -> None:
        presets = self.user()
        presets[name] = json.loads(settings.to_json())
        self._write(presets)

    def remove(self, name: str) -> bool:
        presets = self.user()
        if name not in presets:
            return False
        del presets[name]
        self._write(presets)
        return True

    def _write(self, presets: dict) -> None:
        self.store.setValue(PRESETS_KEY, json.dumps(presets))
        self.store.sync()


class PresetsMixin:
    """ListenView's preset box and settings widgets (built in :mod:`.toolbar`)."""

    def presets(self) -> dict[str, SpectrogramSettings]:
        return self.preset_store.all()

    def save_preset(self, name: str, settings: SpectrogramSettings | None = None) -> None:
        name = name.strip()
        if not name:
            return
        self.preset_store.save(name, settings or self.spec_settings)
        self._refresh_presets(select=name)
        self._status(f"Saved spectrogram preset '{name}'")

    def remove_preset(self, name: str) -> bool:
        if not self.preset_store.remove(name):
            return False
        self._refresh_presets()
        return True

    def remove_current_preset(self) -> None:
        name = self.preset_box.currentData()
        if name and not self.remove_preset(name):
            self._status(f"'{name}' is built in and stays")

    def _refresh_presets(self, select: str | None = None) -> None:
        box = self.preset_box
        box.blockSignals(True)
        box.clear()
        presets = self.presets()
        user = self.preset_store.user()
        for name in presets:
            box.addItem(name if name in user else f"{name} (built in)", name)
        match = select or next((name for name, s in presets.items() if s == self.spec_settings), None)
        if match is None:
            box.insertItem(0, "(custom)", None)
            box.setCurrentIndex(0)
        else:
            box.setCurrentIndex(max(0, box.findData(match)))
        box.blockSignals(False)

    def _show_settings(self, settings: SpectrogramSettings) -> None:
        widgets = (self.window_box, self.maxfreq_box, self.range_box, self.cmap_box)
        for widget in widgets:
            widget.blockSignals(True)
        self.window_box.setCurrentIndex(max(0, self.window_box.findData(settings.window)))
        self.maxfreq_box.setValue(int(settings.max_freq))
        self.range_box.setValue(settings.dynamic_range)
        self.cmap_box.setCurrentIndex(max(0, self.cmap_box.findText(settings.colormap)))
        for widget in widgets:
            widget.blockSignals(False)

    def _on_preset_chosen(self, index: int) -> None:
        name = self.preset_box.itemData(index)
        if name:
            self.apply_spectrogram_settings(self.presets()[name])

    def _on_settings_edited(self, *_) -> None:
        self.apply_spectrogram_settings(
            SpectrogramSettings(
                window=int(self.window_box.currentData()),
                max_freq=float(self.maxfreq_box.value()),
                dynamic_range=float(self.range_box.value()),
                colormap=self.cmap_box.currentText(),
            )
        )
