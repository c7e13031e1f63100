import math

import numpy as np
import pytest

from trainer.evaluate import confusion_matrix, icbhi_score, mean_std, summarise_runs


def test_hand_computed_confusion():
    # rows: true normal, crackle, wheeze, both
    labels = [0] * 10 + [1] * 6 + [2] * 4 + [3] * 2
    preds = [0] * 8 + [1, 2] + [1] * 4 + [0, 3] + [2, 2, 0, 1] + [3, 1]
    result = icbhi_score(labels, preds)
    cm = np.array([[8, 1, 1, 0], [1, 4, 0, 1], [1, 1, 2, 0], [0, 1, 0, 1]])
    assert (result["confusion"] == cm).all()
    assert result["sp"] == pytest.approx(80.0)
    assert result["se"] == pytest.approx(100 * 7 / 12)
    assert result["score"] == pytest.approx((80.0 + 100 * 7 / 12) / 2)
    assert result["n"] == 22


def test_both_must_be_predicted_as_both():
    # A 'both' cycle predicted as crackle is a miss, though the crackle was found.
    result = icbhi_score([3, 3, 0], [1, 3, 0])
    assert result["se"] == pytest.approx(50.0) and result["sp"] == pytest.approx(100.0)


def test_perfect_and_degenerate():
    assert icbhi_score([0, 1, 2, 3], [0, 1, 2, 3])["score"] == 100.0
    all_normal = icbhi_score([0, 1, 2, 3], [0, 0, 0, 0])
    assert (all_normal["sp"], all_normal["se"], all_normal["score"]) == (100.0, 0.0, 50.0)
    assert math.isnan(icbhi_score([1, 2], [1, 2])["sp"])
    with pytest.raises(ValueError):
        confusion_matrix([0, 4], [0, 0])
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0])


def test_mean_std_over_seeds():
    mean, std = mean_std([57.0, 58.0, 59.0])
    assert mean == pytest.approx(58.0) and std == pytest.approx(1.0)
    assert mean_std([60.0]) == (60.0, 0.0)
    summary = summarise_runs([{"sp": 80, "se": 40, "score": 60}, {"sp": 70, "se": 50, "score": 60}])
    assert summary["sp"] == pytest.approx((75.0, np.std([80, 70], ddof=1)))
    assert summary["score"] == (60.0, 0.0) and summary["n"] == 2
