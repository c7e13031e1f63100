"""ICBHI file names: ``<patient>_<recording index>_<chest location>_<acquisition mode>_<device>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..vocab import ACQUISITION_MODES, CHEST_LOCATIONS

_NAME = re.compile(
    r"^(?P<patient>\d+)_(?P<index>[0-9A-Za-z]+)"
    rf"_(?P<location>{'|'.join(CHEST_LOCATIONS)})_(?P<mode>{'|'.join(ACQUISITION_MODES)})_(?P<device>[0-9A-Za-z]+)$",
    re.ASCII,  # \d would take any script's digits, making patient "١٠١" a different patient from "101"
)


@dataclass(frozen=True)
class RecordingName:
    name: str
    patient: str
    index: str
    location: str
    mode: str
    device: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies a recording when a device name was mistyped (patient, index, location, mode)."""
        return (self.patient, self.index, self.location, self.mode)


def parse_name(stem: str) -> RecordingName | None:
    """The parts of an ICBHI-style file stem, or None for any other name."""
    match = _NAME.match(stem)
    if not match:
        return None
    return RecordingName(stem, match["patient"], match["index"], match["location"], match["mode"], match["device"])
