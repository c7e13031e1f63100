"""The loss weightings of two published distillation recipes, as named presets (REFERENCE.md section 8).

A preset fixes the hard-label weight and the temperature of :func:`trainer.distill.losses.distillation_loss`,
(1 - hard_weight) * T^2 * CE(teacher targets, softmax(student / T)) + hard_weight * CE(labels, student):

``efficientat``
    fschmid56/EfficientAT, ``ex_audioset.py``: ``--kd_lambda 0.1``, ``--temperature 1``;
    ``loss = kd_lambda * label_loss + (1 - kd_lambda) * soft_targets_loss``, so 0.1 x label loss +
    0.9 x teacher loss. Both terms there are binary cross-entropies over sigmoids (AudioSet is
    multi-label); ICBHI's four classes are exclusive, so here both are softmax cross-entropies.
``cp-jku``
    fschmid56/cpjku_dcase23, ``run_training.py``: ``--kd_lambda 0.02``, ``--temperature 2.0``;
    ``kd_loss = KLDiv(log_softmax(y_hat / T), teacher log-probs at T) * T^2`` and
    ``loss = kd_lambda * label_loss + (1 - kd_lambda) * kd_loss``: 0.02 x CE + 0.98 x T^2 x KL, the label
    term at T = 1 as in our loss. That code averages the KL over classes as well as cycles
    (``KLDivLoss(reduction="none").mean()``), which scales its teacher term by 1 / classes (1/10 on
    DCASE); we sum over classes per cycle (the KL divergence proper), so the nominal weights mean here
    what the paper's formula says, not what that reduction makes of them.

KL against cross-entropy: KL(p || q) = CE(p, q) - H(p), and the teachers' entropy H(p) does not depend on
the student, so the two losses differ by a constant and give the student the same gradient; our loss
uses the cross-entropy and its values are higher than the published KL by H(p) x T^2 x (1 - hard_weight).
"""

from __future__ import annotations

import math

from .modes import DistillError

PRESETS: dict[str, dict[str, float]] = {
    "efficientat": {"hard_weight": 0.1, "temperature": 1.0},
    "cp-jku": {"hard_weight": 0.02, "temperature": 2.0},
}


def apply_preset(targets: dict) -> dict:
    """A copy of ``targets`` with the preset named by ``targets["preset"]`` filled in (None/absent: unchanged).

    A value given alongside the preset must equal the preset's: a preset plus a different explicit
    value is refused, since either reading would silently drop half of what was asked for. Call this
    before any defaults are filled in, or every default would look like a conflict.
    """
    resolved = dict(targets)
    name = resolved.get("preset")
    if name is None:
        resolved.pop("preset", None)
        return resolved
    if name not in PRESETS:
        raise DistillError(f"unknown distillation preset {name!r} (known: {', '.join(PRESETS)})")
    for key, value in PRESETS[name].items():
        given = resolved.get(key)
        if given is not None:
            try:
                same = math.isclose(float(given), value, rel_tol=0.0, abs_tol=1e-12)
            except (TypeError, ValueError):
                same = False
            if not same:
                raise DistillError(
                    f"distillation preset {name!r} sets {key} = {value:g}, but {key} = {given!r} is also given; "
                    f"drop the preset or the explicit {key}")
        resolved[key] = value
    return resolved
