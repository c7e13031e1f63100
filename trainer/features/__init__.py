"""Model inputs of breathing cycles, one room each:

* ``filterbank``: the Kaldi log-mel filterbank (cnn and ast sets), batched, threaded on CPU; and in numpy alone;
* ``clap``: CLAP's log-mel input (clap set), the transformers extractor's settings and a torch path;
* ``normalise``: AudioSet statistics and per-sample normalisation of a filterbank;
* ``augment``: SpecAugment;
* ``sets``: the one table of feature sets (settings, shapes, normalisation, model family);
* ``cache``: features of exact cycle sets, computed once into the project's artifacts, memory-mapped.

Names are imported when first used (PEP 562), so that ``trainer.features.filterbank`` (its numpy
path) imports without torch: the classify-only edition has none. Nothing here imports Qt.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_HOMES = {
    "spec_augment": "augment",
    "CachedFeatures": "cache", "cache_dir": "cache", "clear_cache": "cache", "ensure_features": "cache",
    "load_features": "cache",
    "clap_features": "clap",
    "fbank_frames": "filterbank", "kaldi_fbank": "filterbank", "kaldi_fbank_numpy": "filterbank",
    "ast_normalize": "normalise", "per_sample_normalize": "normalise",
    "FEATURE_SETS": "sets", "FEATURE_VERSION": "sets", "FeatureError": "sets", "FeatureSet": "sets",
    "family_of": "sets", "feature_set": "sets",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what static tools (and import-linter) read
    from .augment import spec_augment
    from .cache import CachedFeatures, cache_dir, clear_cache, ensure_features, load_features
    from .clap import clap_features
    from .filterbank import fbank_frames, kaldi_fbank, kaldi_fbank_numpy
    from .normalise import ast_normalize, per_sample_normalize
    from .sets import FEATURE_SETS, FEATURE_VERSION, FeatureError, FeatureSet, family_of, feature_set
