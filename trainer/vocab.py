"""The words the project file stores and everyone shares: labels, splits, origins, devices, chest locations.

At the bottom of the core: it imports nothing from ``trainer``, so the project, the importers, the
label files, the models' prompts and the app all read the same names from here.
"""

from __future__ import annotations

# -- cycle labels: the ICBHI classes, in the order of their numbers 0-3 ----------------------------
LABELS = ("normal", "crackle", "wheeze", "both")

# What people write in label files for the four classes (case is ignored; numbers 0-3 work too).
LABEL_SYNONYMS = {
    "": "normal",
    "none": "normal",
    "n": "normal",
    "c": "crackle",
    "crackles": "crackle",
    "w": "wheeze",
    "wheezes": "wheeze",
    "b": "both",
    "crackle+wheeze": "both",
    "crackle + wheeze": "both",
    "crackles+wheezes": "both",
    "wheeze+crackle": "both",
}


def label_of(crackle: int, wheeze: int) -> int:
    """ICBHI label: (0,0) normal 0, (1,0) crackle 1, (0,1) wheeze 2, (1,1) both 3."""
    return int(bool(crackle)) + 2 * int(bool(wheeze))


def flags_of(label: int | str) -> tuple[int, int]:
    """(crackle, wheeze) of a label given as 0-3 or a name."""
    if isinstance(label, str):
        key = label.strip().lower()
        if key not in LABELS:
            if key.isdigit():
                return flags_of(int(key))
            raise ValueError(f"unknown label {label!r} (expected one of {', '.join(LABELS)} or 0-3)")
        label = LABELS.index(key)
    if int(label) not in (0, 1, 2, 3):
        raise ValueError(f"unknown label {label!r} (expected 0-3)")
    return int(label) & 1, (int(label) >> 1) & 1


def parse_label(text: str) -> tuple[int, int]:
    """(crackle, wheeze) from a label name, a synonym, or 0-3, as label files write them; ValueError otherwise."""
    key = text.strip().strip('"').lower()
    return flags_of(LABEL_SYNONYMS.get(key, key))


# -- recordings and cycles ----------------------------------------------------------------------------
SPLITS = ("train", "test")
# Who made a cycle: the dataset's own annotation, a person, or a model's segmentation.
ORIGINS = ("dataset", "user", "model")
AUDIO_STATUSES = ("ok", "missing", "changed", "unreadable")

# -- ICBHI metadata: the codes in file names, and what they stand for -----------------------------------
CHEST_LOCATIONS = {
    "Tc": "trachea",
    "Al": "left anterior chest",
    "Ar": "right anterior chest",
    "Pl": "left posterior chest",
    "Pr": "right posterior chest",
    "Ll": "left lateral chest",
    "Lr": "right lateral chest",
}
ACQUISITION_MODES = {"sc": "sequential (single channel)", "mc": "simultaneous (multichannel)"}
DEVICES = {
    "Meditron": "WelchAllyn Meditron Master Elite electronic stethoscope",
    "LittC2SE": "3M Littmann Classic II SE stethoscope",
    "Litt3200": "3M Littmann 3200 electronic stethoscope",
    "AKGC417L": "AKG C417L microphone",
}

AGE_GROUPS = ("adult", "pediatric")
# Adult from this age on, pediatric below (the ICBHI convention; REFERENCE.md section 1).
ADULT_AGE = 19


def age_group(age: float | None) -> str | None:
    """'adult', 'pediatric', or None for an unknown age."""
    if age is None:
        return None
    return "adult" if age >= ADULT_AGE else "pediatric"
