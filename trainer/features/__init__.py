"""Model inputs of breathing cycles, one room each:

* ``filterbank``: the Kaldi log-mel filterbank (cnn and ast sets), batched, threaded on CPU;
* ``clap``: CLAP's log-mel input (clap set), the transformers extractor's settings and a torch path;
* ``normalise``: AudioSet statistics and per-sample normalisation of a filterbank;
* ``augment``: SpecAugment;
* ``sets``: the one table of feature sets (settings, shapes, normalisation, model family);
* ``cache``: features of exact cycle sets, computed once into the project's artifacts, memory-mapped.

Nothing here imports Qt.
"""

from .augment import spec_augment
from .cache import CachedFeatures, cache_dir, clear_cache, ensure_features, load_features
from .clap import clap_features
from .filterbank import fbank_frames, kaldi_fbank
from .normalise import ast_normalize, per_sample_normalize
from .sets import FEATURE_SETS, FEATURE_VERSION, FeatureError, FeatureSet, family_of, feature_set

__all__ = [
    "FEATURE_SETS",
    "FEATURE_VERSION",
    "CachedFeatures",
    "FeatureError",
    "FeatureSet",
    "ast_normalize",
    "cache_dir",
    "clap_features",
    "clear_cache",
    "ensure_features",
    "family_of",
    "fbank_frames",
    "feature_set",
    "kaldi_fbank",
    "load_features",
    "per_sample_normalize",
    "spec_augment",
]
