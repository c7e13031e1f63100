"""The one table of feature sets: what each computes, its shape, its normalisation, the family that reads it.

Models (their registry and example inputs), the training defaults (by family) and the cache all read
this table; ``trainer.cli.features`` writes its names out so that building the parser does not import
torch, and a test keeps the two equal.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from importlib import metadata

import torch

from ..audio import PrepSettings
from .clap import CLAP_EXTRACTOR_ARGS, CLAP_FRAMES, clap_features
from .filterbank import fbank_frames, kaldi_fbank
from .normalise import ast_normalize, per_sample_normalize
from .spectra import SPECTRA_KINDS, spectra

FEATURE_VERSION = 1
"""Bump when the computation of any feature set changes: every existing cache then misses."""

FEATURE_KINDS = ("fbank", "clap", *SPECTRA_KINDS)
NORMALIZATIONS = ("per_sample", "ast", "none")
# The model families whose training recipes differ (trainer.train's defaults are keyed by these).
FAMILIES = ("cnn", "transformer")


class FeatureError(Exception):
    """Features that cannot be computed for the cycles asked for; the message says which and why."""


@dataclass(frozen=True)
class FeatureSet:
    """Every setting that decides a feature tensor (all of it goes into the cache key), and its family.

    ``family`` is the family of the models that read the set ("cnn" or "transformer"), which picks
    their training recipe; it decides nothing about the tensor and stays out of the key.
    """

    name: str
    kind: str
    prep: PrepSettings
    normalization: str = "none"
    num_mel_bins: int = 128
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    preemphasis: float = 0.97
    low_freq: float = 20.0
    high_freq: float = 0.0
    clap: tuple = ()
    version: int = FEATURE_VERSION
    family: str = "cnn"
    # Bins of a spectral kind's output (stft: linear-frequency bins, mfcc: coefficients); 0 elsewhere.
    output_bins: int = 0

    def __post_init__(self):
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"unknown feature kind {self.kind!r} (expected one of {', '.join(FEATURE_KINDS)})")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {self.normalization!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r} (expected one of {', '.join(FAMILIES)})")
        if (self.kind in SPECTRA_KINDS) != (self.output_bins > 0):
            raise ValueError(f"{self.name}: output_bins is set for the stft and mfcc kinds only, and they need it")
        if self.kind == "clap" and self.prep.sample_rate != CLAP_EXTRACTOR_ARGS["sampling_rate"]:
            raise ValueError("CLAP features need 48 kHz audio")

    @property
    def shape(self) -> tuple[int, int]:
        """(frames, bins) of one cycle."""
        if self.kind == "clap":
            return CLAP_FRAMES, CLAP_EXTRACTOR_ARGS["feature_size"]
        frames = fbank_frames(self.prep.target_samples, self.prep.sample_rate, self.frame_length_ms, self.frame_shift_ms)
        return frames, self.output_bins or self.num_mel_bins

    def settings(self) -> dict:
        data = dataclasses.asdict(self)
        # Not an input of the computation; keeping it out also keeps the keys of caches written
        # before the field existed.
        del data["family"]
        if not self.output_bins:  # added with the spectral kinds: the sets before them keep their keys
            del data["output_bins"]
        data["prep"] = dataclasses.asdict(self.prep)
        data["clap"] = dict(self.clap)
        if self.kind == "clap":
            # The extractor's numerics are transformers' code, not ours.
            data["transformers"] = _version("transformers")
        return data

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.settings(), sort_keys=True).encode()).hexdigest()

    def compute(self, waveforms, device: str | torch.device | None = None) -> torch.Tensor:
        """Features of prepared waveforms (batch, samples) at ``prep.sample_rate``: (batch, T, F) float32."""
        x = torch.as_tensor(waveforms)
        if device is not None:
            x = x.to(device)
        if self.kind == "clap":
            feats = clap_features(x if x.ndim == 2 else x[None])
        elif self.kind in SPECTRA_KINDS:
            feats = spectra(self.kind, x if x.ndim == 2 else x[None], self.settings(), self.prep.sample_rate)
        else:
            feats = kaldi_fbank(
                x if x.ndim == 2 else x[None],
                sample_rate=self.prep.sample_rate,
                num_mel_bins=self.num_mel_bins,
                frame_length_ms=self.frame_length_ms,
                frame_shift_ms=self.frame_shift_ms,
                preemphasis=self.preemphasis,
                low_freq=self.low_freq,
                high_freq=self.high_freq,
            )
        if self.normalization == "ast":
            feats = ast_normalize(feats)
        elif self.normalization == "per_sample":
            feats = per_sample_normalize(feats)
        return feats


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


# One 8-s cycle gives (798, 128) in cnn, ast and stft, (798, 64) in mfcc, (1001, 64) in clap (REFERENCE.md section 2).
FEATURE_SETS: dict[str, FeatureSet] = {
    # 16 kHz Kaldi fbank, per-sample (x - mean) / (2 * std)
    "cnn": FeatureSet("cnn", "fbank", PrepSettings(sample_rate=16000), normalization="per_sample"),
    # the same fbank, AudioSet statistics
    "ast": FeatureSet("ast", "fbank", PrepSettings(sample_rate=16000), normalization="ast", family="transformer"),
    # ClapFeatureExtractor at 48 kHz, 8 s zero-padded to 10 s
    "clap": FeatureSet(
        "clap",
        "clap",
        PrepSettings(sample_rate=48000),
        num_mel_bins=CLAP_EXTRACTOR_ARGS["feature_size"],
        clap=tuple(sorted(CLAP_EXTRACTOR_ARGS.items())),
        family="transformer",
    ),
    # Linear-frequency log power of the cnn set's frames, 256 FFT bins summed in pairs (spectra.py)
    "stft": FeatureSet("stft", "stft", PrepSettings(sample_rate=16000), normalization="per_sample", num_mel_bins=0,
                       low_freq=0.0, output_bins=128),
    # 64 orthonormal DCT-II coefficients of the cnn set's 128-bin log-mel filterbank
    "mfcc": FeatureSet("mfcc", "mfcc", PrepSettings(sample_rate=16000), normalization="per_sample", output_bins=64),
}


def feature_set(name: str | FeatureSet) -> FeatureSet:
    if isinstance(name, FeatureSet):
        return name
    try:
        return FEATURE_SETS[name]
    except KeyError:
        raise FeatureError(f"unknown feature set {name!r} (expected one of {', '.join(FEATURE_SETS)})") from None


def family_of(name: str | FeatureSet) -> str:
    """The model family ("cnn" or "transformer") that reads the feature set ``name``."""
    return feature_set(name).family
