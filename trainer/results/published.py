"""Published numbers of paper 001 (Tables 1-3; REFERENCE.md section 7), shown beside ours in the report."""

from __future__ import annotations

# Every published entry is (Sp, Se, Score), each a (mean, std) over seeds 1-5 or a single number.
TRIPLET = ("sp", "se", "score")
# Our architecture names -> the paper's model names.
PUBLISHED_ARCH = {
    "resnet18": "ResNet18",
    "efficientnet_b0": "EfficientNet",
    "efficientnet": "EfficientNet",
    "cnn6": "CNN6",
    "ast": "AST",
    "clap": "Audio-CLAP",
    "audio-clap": "Audio-CLAP",
    "audio_clap": "Audio-CLAP",
    "bts": "BTS",
}
# Tables 1 and 2: model -> {"hard": ..., "soft": ...}; soft = mean teacher k=5 from BTS++ teachers.
PUBLISHED = {
    "ResNet18": {"hard": ((76.70, 5.65), (33.47, 4.03), (55.09, 0.82)), "soft": ((81.41, 2.78), (31.11, 3.05), (56.26, 0.85))},
    "EfficientNet": {"hard": ((78.21, 3.56), (34.44, 2.84), (56.33, 0.43)), "soft": ((79.26, 3.31), (36.09, 3.39), (57.68, 1.48))},
    "CNN6": {"hard": ((77.00, 3.27), (37.35, 3.15), (57.17, 0.81)), "soft": ((85.57, 2.56), (30.77, 1.97), (58.17, 0.60))},
    "AST": {"hard": ((77.14, 3.35), (43.07, 2.80), (59.55, 0.88)), "soft": ((79.24, 3.51), (42.92, 4.04), (61.08, 1.26))},
    "Audio-CLAP": {"hard": ((80.85, 3.33), (44.67, 3.77), (62.56, 0.37)), "soft": ((82.82, 2.14), (44.44, 2.35), (63.63, 0.60))},
    "BTS": {"hard": ((81.40, 2.57), (45.67, 2.66), (63.54, 0.80)), "soft": ((84.93, 2.25), (43.82, 2.25), (64.38, 0.36))},
}
# BTS-d ablations (Table 3), by our target mode and k.
PUBLISHED_BTS_STUDENTS = {
    ("noise-const", None): ((81.33, 2.90), (44.10, 3.53), (62.71, 0.47)),
    ("noise-teacher-var", None): ((76.53, 3.78), (47.46, 2.36), (62.00, 1.06)),
    ("single", 1): ((83.18, 1.59), (44.62, 1.56), (63.90, 0.15)),
    ("mean", 5): ((84.93, 2.25), (43.82, 2.25), (64.38, 0.36)),
    ("random", 15): ((82.89, 2.14), (45.90, 1.89), (64.39, 0.42)),
    ("curated", 5): ((84.28, 2.58), (44.95, 2.57), (64.61, 0.75)),
}
# BTS++ teacher ensembles and the second generation BTS-d++ (single runs: no std).
PUBLISHED_BTS_ENSEMBLES = {
    ("teacher", 1): (None, None, 62.82),
    ("teacher", 5): (85.18, 43.50, 64.34),
    ("teacher", 15): (88.28, 41.21, 64.75),
    ("teacher", 24): (None, None, 65.73),
    ("teacher", 30): (89.49, 41.89, 65.69),
    ("student", 5): (88.09, 42.82, 65.45),
}


def published_name(arch: str | None) -> str | None:
    return PUBLISHED_ARCH.get((arch or "").strip().lower())


def published_triplet(values) -> dict:
    """A published (Sp, Se, Score) as the report's {"sp": {"mean", "std"}, ...}."""
    out = {}
    for key, value in zip(TRIPLET, values):
        if isinstance(value, tuple):
            out[key] = {"mean": value[0], "std": value[1]}
        else:
            out[key] = {"mean": value, "std": None}
    return out
