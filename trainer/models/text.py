"""Metadata prompts for BTS and the built-in word-level tokenizer.

The prompt wording follows the BTS release (``generate_meta_description``): location first, then the
patient, then the device, e.g. "This sound was recorded from the left anterior chest of a female
pediatric patient, using an AKGC417L microphone." AKGC417L is a microphone; every other device is a
stethoscope.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Iterable, Mapping

import torch

from ..vocab import ADULT_AGE, CHEST_LOCATIONS, DEVICES

ICBHI_DEVICES = tuple(DEVICES)
MICROPHONES = {"AKGC417L"}


def _field(row: Any, key: str) -> Any:
    if row is None:
        return None
    if isinstance(row, Mapping):
        value = row.get(key)
    else:
        value = getattr(row, key, None)
    if isinstance(value, str):
        value = value.strip()
        if value == "" or value.upper() in {"NA", "N/A", "NONE", "NULL", "NAN"}:
            return None
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def age_group_of(patient_row: Any) -> str | None:
    """'adult', 'pediatric' or None (unknown). The age decides; the stored group is the fallback."""
    age = _field(patient_row, "age")
    if age is not None:
        try:
            return "adult" if float(age) >= ADULT_AGE else "pediatric"
        except (TypeError, ValueError):
            pass
    group = _field(patient_row, "age_group")
    if isinstance(group, str):
        group = group.lower()
        if group in {"adult", "pediatric"}:
            return group
        if group in {"paediatric", "child", "children"}:
            return "pediatric"
    return None


def sex_of(patient_row: Any) -> str | None:
    sex = _field(patient_row, "sex")
    if not isinstance(sex, str):
        return None
    return {"m": "male", "male": "male", "f": "female", "female": "female"}.get(sex.lower())


def _patient_phrase(age_group: str | None, sex: str | None) -> str:
    if age_group and sex:
        return f"an adult {sex} patient" if age_group == "adult" else f"a {sex} pediatric patient"
    if sex:
        return f"a {sex} patient with unknown age"
    if age_group:
        return f"{'an' if age_group == 'adult' else 'a'} {age_group} patient with unknown sex"
    return "a patient with unknown age and sex"


def _device_phrase(device: str | None) -> str:
    if not device:
        return "an unknown device"
    if device in MICROPHONES:
        return f"an {device} microphone"
    return f"a {device} stethoscope"


def _location_phrase(code: str | None) -> str:
    name = CHEST_LOCATIONS.get(code) if code else None
    if name is None and isinstance(code, str) and code.lower() in CHEST_LOCATIONS.values():
        name = code.lower()
    return f"the {name}" if name else "an unknown region"


def bts_prompt(recording_row: Any, patient_row: Any = None) -> str:
    """The BTS text prompt for one recording and its patient (rows as dicts; any field may be None)."""
    location = _location_phrase(_field(recording_row, "chest_location"))
    device = _device_phrase(_field(recording_row, "device"))
    patient = _patient_phrase(age_group_of(patient_row), sex_of(patient_row))
    return f"This sound was recorded from {location} of {patient}, using {device}."


def all_prompts() -> list[str]:
    """Every prompt that ICBHI-style metadata can produce (known devices and locations, or unknown)."""
    prompts = []
    for loc, dev, age, sex in itertools.product(
        [*CHEST_LOCATIONS, None], [*ICBHI_DEVICES, None], [30, 5, None], ["M", "F", None]
    ):
        prompts.append(bts_prompt({"chest_location": loc, "device": dev}, {"age": age, "sex": sex}))
    return prompts


_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")  # the RoBERTa ids 0..3, so pad is 1 as CLAP expects


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _build_vocab() -> tuple[str, ...]:
    words = sorted({w for prompt in all_prompts() for w in _words(prompt)})
    return SPECIAL_TOKENS + tuple(words)


class WordTokenizer:
    """Deterministic word-level tokenizer over the prompt vocabulary (no files, no downloads).

    Output matches what a transformers tokenizer gives the CLAP text tower: ``input_ids`` with
    ``<s> ... </s>``, padded with id 1, and ``attention_mask``. Words outside the vocabulary (a device
    name that is not one of ICBHI's) become ``<unk>``.
    """

    name = "builtin-words-v1"

    def __init__(self, vocab: Iterable[str] | None = None, max_length: int = 128) -> None:
        self.vocab = tuple(vocab) if vocab is not None else _build_vocab()
        self.index = {word: i for i, word in enumerate(self.vocab)}
        self.bos_id, self.pad_id, self.eos_id, self.unk_id = (self.index[t] for t in SPECIAL_TOKENS)
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        ids = [self.index.get(w, self.unk_id) for w in _words(text)][: self.max_length - 2]
        return [self.bos_id, *ids, self.eos_id]

    def __call__(self, prompts: list[str] | str) -> dict[str, torch.Tensor]:
        if isinstance(prompts, str):
            prompts = [prompts]
        encoded = [self.encode(p) for p in prompts]
        width = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, tokens in enumerate(encoded):
            ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            mask[row, : len(tokens)] = 1
        return {"input_ids": ids, "attention_mask": mask}


class HFTokenizer:
    """A transformers tokenizer loaded from a checkpoint, behind the same call as WordTokenizer."""

    def __init__(self, source: str, max_length: int = 128) -> None:
        from transformers import AutoTokenizer

        from .hf_loading import quiet_transformers

        hint = "pass tokenizer='builtin' to use the built-in word tokenizer instead"
        try:
            with quiet_transformers():
                self.tokenizer = AutoTokenizer.from_pretrained(source)
        except Exception as exc:  # transformers raises OSError/ValueError/... for a folder without one
            raise ValueError(f"{source}: no usable tokenizer there ({type(exc).__name__}: {exc}); {hint}") from exc
        # Given a folder without vocabulary files, transformers 5 builds an empty tokenizer that drops
        # every word (or maps it to <unk>) instead of failing. A real one keeps every word of a prompt.
        special = set(self.tokenizer.all_special_ids)
        for prompt in all_prompts()[:20]:
            kept = [i for i in self.tokenizer(prompt)["input_ids"] if i not in special]
            if len(kept) < len(_words(prompt)) // 2:
                raise ValueError(f"{source}: the tokenizer there does not know the prompt words (no vocabulary "
                                 f"files?); {hint}")
        self.name = str(source)
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.tokenizer)

    def __call__(self, prompts: list[str] | str) -> dict[str, torch.Tensor]:
        if isinstance(prompts, str):
            prompts = [prompts]
        out = self.tokenizer(list(prompts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return {k: out[k] for k in ("input_ids", "attention_mask")}
