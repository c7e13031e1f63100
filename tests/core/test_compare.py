"""Comparisons of two systems (significance, breakdowns, calibration) and label review, on stored fake runs.

Runs and logits are inserted directly into a copy of the demo project (no training). Every expected
number is computed here independently: plain-Python loops, ``math`` and ``statistics`` (no scipy).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import random
import statistics
from collections import Counter

import numpy as np
import pytest
from conftest import copy_project

from trainer import runs
from trainer.project import Project

TEACHERS = ["t1", "t2", "t3", "t4", "t5"]
STUDENTS = ["s1", "s2", "s3"]


# -- independent references ----------------------------------------------------------------------------
def score_of(labels, predictions) -> tuple[float, float, float]:
    """ICBHI (Sp, Se, Score) in percent by a loop over cycles."""
    normal = abnormal = normal_hits = abnormal_hits = 0
    for label, guess in zip(labels, predictions):
        if label == 0:
            normal += 1
            normal_hits += guess == 0
        else:
            abnormal += 1
            abnormal_hits += guess == label
    sp = 100.0 * normal_hits / normal if normal else math.nan
    se = 100.0 * abnormal_hits / abnormal if abnormal else math.nan
    return sp, se, (sp + se) / 2


def percentile(values, q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default), by hand."""
    ordered = sorted(values)
    position = q / 100 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def softmax_rows(logits) -> list[list[float]]:
    out = []
    for row in logits:
        top = max(row)
        exps = [math.exp(v - top) for v in row]
        out.append([e / sum(exps) for e in exps])
    return out


def t_density_tail(t: float, df: float, steps: int = 20000) -> float:
    """Two-sided P(|T| >= |t|) by Simpson integration of Student's density over [0, |t|]."""
    norm = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def f(x):
        return norm * (1 + x * x / df) ** (-(df + 1) / 2)

    h = abs(t) / steps
    area = f(0) + f(abs(t)) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, steps))
    return 1 - 2 * area * h / 3


def known_predictions(n=80, seed=7):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    labels[: n // 3] = 0
    a = np.where(rng.random(n) < 0.6, labels, rng.integers(0, 4, n))
    b = np.where(rng.random(n) < 0.7, labels, rng.integers(0, 4, n))
    return labels, a, b


# -- the fake study --------------------------------------------------------------------------------------
class Study:
    """The demo project with teacher and student runs whose logits on every cycle are stored."""

    def __init__(self, path):
        self.project = Project.open(path)
        self.rng = np.random.default_rng(11)
        with self.project.transaction():
            db = self.project.db
            test = self.project.recordings(split="test")
            # Metadata to break down by: one pediatric patient, one recording without a patient.
            db["patients"].update(test[0]["patient_id"], {"age": 8.0, "age_group": None})
            db["recordings"].update(test[-1]["id"], {"patient_id": None})
        self.cycles = self.project.cycles()
        self.ids = [c["id"] for c in self.cycles]
        self.labels = np.array([c["label"] for c in self.cycles])
        self.logits: dict[str, np.ndarray] = {}
        for seed, run_id in enumerate(TEACHERS, 1):
            self.add_run(run_id, "teachers", seed, quality=1.0 + 0.1 * seed)
        for seed, run_id in enumerate(STUDENTS, 1):
            self.add_run(run_id, "students", seed, quality=1.8, kind="student")
        test_ids = [c["id"] for c in self.cycles if c["split"] == "test"]
        self.add_run("partial", "partial", 1, quality=1.5, skip=set(test_ids[:3]))

    def add_run(self, run_id, group, seed, quality, kind="teacher", skip=()):
        logits = (self.rng.normal(size=(len(self.ids), 4)) + quality * np.eye(4)[self.labels]).astype(np.float32)
        spec = {"arch": "cnn6", "seed": seed, "group": group, "targets": {"kind": "hard"}}
        runs.insert_run(self.project, run_id, group=group, kind=kind, arch="cnn6", seed=seed, spec=spec)
        keep = [i for i, cid in enumerate(self.ids) if cid not in skip]
        runs.store_logits(self.project, run_id, [self.ids[i] for i in keep], logits[keep])
        runs.finish(self.project, run_id, metrics={"score": 0.0}, checkpoint=None, epoch=1)
        self.logits[run_id] = logits

    def split(self, name="test"):
        """(positions, cycle ids, labels) of a split's cycles, ordered by id as the results order them."""
        chosen = sorted((c["id"], i) for i, c in enumerate(self.cycles) if c["split"] == name)
        positions = [i for _, i in chosen]
        return positions, [cid for cid, _ in chosen], self.labels[positions]

    def mean_logits(self, run_ids, positions):
        return np.mean([self.logits[r][positions].astype(np.float64) for r in run_ids], axis=0)


@pytest.fixture(scope="module")
def study(demo_template, tmp_path_factory):
    path = copy_project(demo_template, tmp_path_factory.mktemp("compare") / "study.rsc")
    s = Study(path)
    yield s
    s.project.close()


# -- significance on known data --------------------------------------------------------------------------
def test_paired_bootstrap_matches_a_plain_python_loop_over_the_same_draws():
    from trainer.results import cycle_patterns, paired_bootstrap, resample_patterns

    labels, a, b = known_predictions()
    hits_a, hits_b = a == labels, b == labels
    # The patterns (abnormal, hit A, hit B) and their sizes, counted here without numpy.
    mine = Counter((int(lab != 0), int(ha), int(hb)) for lab, ha, hb in zip(labels, hits_a, hits_b))
    patterns, sizes = cycle_patterns(labels, hits_a, hits_b)
    assert [tuple(map(int, p)) for p in patterns] == sorted(mine) and list(sizes) == [mine[k] for k in sorted(mine)]
    representative = {}
    for i, key in enumerate(zip((labels != 0).astype(int), hits_a.astype(int), hits_b.astype(int))):
        representative.setdefault(tuple(map(int, key)), i)

    draws = resample_patterns(sizes, 200, seed=5)
    differences = []
    for counts in draws:  # each resample as an explicit list of cycle indices
        chosen = [representative[key] for key, m in zip(sorted(mine), counts) for _ in range(int(m))]
        assert len(chosen) == len(labels)
        differences.append(score_of(labels[chosen], b[chosen])[2] - score_of(labels[chosen], a[chosen])[2])
    result = paired_bootstrap(labels, hits_a, hits_b, n_resamples=200, seed=5)
    assert result["difference"] == pytest.approx(score_of(labels, b)[2] - score_of(labels, a)[2], abs=1e-12)
    assert result["low"] == pytest.approx(percentile(differences, 2.5), abs=1e-9)
    assert result["high"] == pytest.approx(percentile(differences, 97.5), abs=1e-9)
    share_le = sum(d <= 0 for d in differences) / 200
    share_ge = sum(d >= 0 for d in differences) / 200
    assert result["p"] == pytest.approx(min(1.0, 2 * min(share_le, share_ge)), abs=1e-12)
    assert result["undefined"] == 0 and result["resamples"] == 200 and result["n_cycles"] == len(labels)
    # Seeded: the same seed gives the same interval, another seed another one.
    assert paired_bootstrap(labels, hits_a, hits_b, 200, seed=5) == result
    assert paired_bootstrap(labels, hits_a, hits_b, 200, seed=6)["low"] != result["low"]


def test_bootstrap_has_the_distribution_of_drawing_cycle_indices():
    """Pattern counts from a multinomial against N cycle indices drawn uniformly, in plain Python."""
    from trainer.results import paired_bootstrap

    labels, a, b = known_predictions(n=60, seed=3)
    draw = random.Random(1)
    differences = []
    for _ in range(3000):
        chosen = [draw.randrange(len(labels)) for _ in labels]
        differences.append(score_of(labels[chosen], b[chosen])[2] - score_of(labels[chosen], a[chosen])[2])
    result = paired_bootstrap(labels, a == labels, b == labels, n_resamples=20_000, seed=0)
    spread = statistics.stdev(differences)
    assert result["std"] == pytest.approx(spread, rel=0.08)
    assert result["low"] == pytest.approx(percentile(differences, 2.5), abs=0.25 * spread)
    assert result["high"] == pytest.approx(percentile(differences, 97.5), abs=0.25 * spread)


def test_bootstrap_of_a_group_mean_averages_the_runs_scores_on_each_resample():
    from trainer.results import cycle_patterns, paired_bootstrap, resample_patterns

    labels, a, b = known_predictions(n=40, seed=9)
    _, c, _ = known_predictions(n=40, seed=10)
    hits_group = np.column_stack([a == labels, c == labels])  # a "group" of two runs against b
    result = paired_bootstrap(labels, hits_group, b == labels, n_resamples=50, seed=2)
    expected = score_of(labels, b)[2] - (score_of(labels, a)[2] + score_of(labels, c)[2]) / 2
    assert result["difference"] == pytest.approx(expected, abs=1e-12)
    # One resample, expanded into cycle indices and scored run by run here.
    patterns, sizes = cycle_patterns(labels, hits_group, b == labels)
    (counts,) = resample_patterns(sizes, 1, seed=2)
    keys = [(int(lab != 0), int(x == lab) + int(y == lab), int(z == lab)) for lab, x, y, z in zip(labels, a, c, b)]
    chosen = [keys.index(tuple(map(int, row))) for row, m in zip(patterns, counts) for _ in range(int(m))]
    one = score_of(labels[chosen], b[chosen])[2] - (score_of(labels[chosen], a[chosen])[2]
                                                    + score_of(labels[chosen], c[chosen])[2]) / 2
    single = paired_bootstrap(labels, hits_group, b == labels, n_resamples=1, seed=2)
    assert single["low"] == pytest.approx(one, abs=1e-9) and single["high"] == pytest.approx(one, abs=1e-9)


def test_mcnemar_p_matches_the_exact_binomial_and_the_chi_square_tail_by_hand():
    from trainer.results import mcnemar

    def hits(a_only, b_only, both, neither):
        a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
        b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
        return np.array(a), np.array(b)

    small = mcnemar(*hits(3, 9, 40, 8))
    n = 12
    exact = 2 * sum(math.comb(n, i) * 0.5**n for i in range(0, 4))
    assert small["method"] == "exact binomial" and (small["a_only"], small["b_only"]) == (3, 9)
    assert small["p"] == pytest.approx(exact, rel=1e-12) and small["p"] == pytest.approx(598 / 4096)
    assert small["both"] == 40 and small["neither"] == 8
    assert small["statistic"] == pytest.approx((abs(3 - 9) - 1) ** 2 / 12)

    large = mcnemar(*hits(30, 50, 100, 20))
    x = (abs(30 - 50) - 1) ** 2 / 80
    assert large["method"].startswith("chi-square") and large["statistic"] == pytest.approx(x)
    assert large["p"] == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-12)
    assert large["p"] == pytest.approx(2 * (1 - statistics.NormalDist().cdf(math.sqrt(x))), rel=1e-9)
    # The same counts with the exact test forced: the binomial tail, summed here term by term.
    forced = mcnemar(*hits(30, 50, 100, 20), exact_below=1000)
    assert forced["p"] == pytest.approx(2 * sum(math.comb(80, i) for i in range(31)) / 2**80, rel=1e-12)
    # Symmetric in the systems, and no discordant cycle means no evidence.
    assert mcnemar(*reversed(hits(3, 9, 40, 8)))["p"] == pytest.approx(small["p"])
    assert mcnemar(*hits(0, 0, 10, 5))["p"] == 1.0 and mcnemar(*hits(4, 4, 1, 1))["p"] == 1.0


def test_welch_and_permutation_tests_match_independent_computations():
    from trainer.results import permutation_test, seed_test, t_two_sided, welch

    a, b = [61.2, 63.5, 60.1, 62.8, 64.0], [65.9, 64.2, 67.1]
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    t = (statistics.mean(b) - statistics.mean(a)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    result = welch(a, b)
    assert result["t"] == pytest.approx(t) and result["df"] == pytest.approx(df)
    assert result["p"] == pytest.approx(t_density_tail(t, df), abs=1e-8)
    for t_value, dof in ((2.0, 10.0), (0.3, 3.7), (5.5, 2.2), (1.0, 1.0)):
        assert t_two_sided(t_value, dof) == pytest.approx(t_density_tail(t_value, dof), abs=1e-8)
    assert t_two_sided(1.0, 1.0) == pytest.approx(0.5)  # Cauchy: P(|T| >= 1) = 1/2

    # Every split of 1..6 into three and three: only the two extreme ones reach |mean difference| 3.
    exact = permutation_test([1, 2, 3], [4, 5, 6])
    assert exact["exact"] and exact["permutations"] == 20 and exact["p"] == pytest.approx(2 / 20)
    pooled = a + b
    observed = abs(statistics.mean(b) - statistics.mean(a))
    reach = 0
    for chosen in itertools.combinations(range(len(pooled)), len(a)):
        left = [pooled[i] for i in chosen]
        right = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        reach += abs(statistics.mean(right) - statistics.mean(left)) >= observed - 1e-9
    assert permutation_test(a, b)["p"] == pytest.approx(reach / math.comb(8, 5))
    both = seed_test(a, b)
    assert both["a"]["mean"] == pytest.approx(statistics.mean(a))
    assert both["b"]["std"] == pytest.approx(statistics.stdev(b))
    with pytest.raises(ValueError, match="two or more values"):
        welch([1.0], b)


# -- calibration --------------------------------------------------------------------------------------------
def test_ece_and_reliability_bins_by_hand():
    from trainer.results import calibration

    probabilities = [[0.9, 0.1, 0, 0], [0.6, 0.4, 0, 0], [0.3, 0.7, 0, 0], [0.25, 0.25, 0.25, 0.25], [0, 0, 0, 1.0]]
    labels = [0, 1, 1, 0, 2]
    # Bins [0, .25) [.25, .5) [.5, .75) [.75, 1]: confidences .25 | .6 .7 | .9 1.0 (the last one wrong).
    result = calibration(probabilities, labels, bins=4)
    assert [b["count"] for b in result["bins"]] == [0, 1, 2, 2]
    assert result["bins"][0]["confidence"] is None and result["bins"][0]["accuracy"] is None
    middle, top = result["bins"][2], result["bins"][3]
    assert middle["confidence"] == pytest.approx(0.65) and middle["accuracy"] == pytest.approx(0.5)
    assert top["confidence"] == pytest.approx(0.95) and top["accuracy"] == pytest.approx(0.5)
    assert result["ece"] == pytest.approx((1 * 0.75 + 2 * 0.15 + 2 * 0.45) / 5)
    assert (result["bins"][1]["lower"], result["bins"][1]["upper"]) == (0.25, 0.5)


def test_report_calibration_is_optional_and_matches_an_independent_ece(study, capsys):
    from trainer.cli import main
    from trainer.results import build_report, render
    from trainer.results.render import CSV_FIELDS

    plain = build_report(study.project)
    assert "calibration" not in plain and "Calibration" not in render(plain, "md")
    assert render(plain, "csv").splitlines()[0] == ",".join(CSV_FIELDS)
    report = build_report(study.project, calibration_bins=10)
    rows = {c["group"]: c for c in report["calibration"]}
    positions, _, labels = study.split("test")
    probabilities = softmax_rows(study.mean_logits(TEACHERS, positions))
    gaps = {}
    for p, label in zip(probabilities, labels):
        confidence = max(p)
        which = min(int(confidence * 10), 9)
        gaps.setdefault(which, []).append((confidence, p.index(confidence) == label))
    expected = sum(abs(sum(c for c, _ in v) - sum(ok for _, ok in v)) for v in gaps.values()) / len(labels)
    assert rows["teachers"]["ensemble_ece"] == pytest.approx(expected, abs=1e-12)
    assert rows["teachers"]["k"] == 5 and rows["students"]["run_ids"] == STUDENTS
    assert rows["students"]["runs_ece"]["std"] is not None and rows["partial"]["runs_ece"]["std"] is None
    # The text formats show it; the plain ones stay as they were.
    assert main(["report", str(study.project.path)]) == 0
    assert capsys.readouterr().out == render(plain, "md")
    assert main(["report", str(study.project.path), "--calibration", "--format", "csv"]) == 0
    table = [r for r in csv.DictReader(io.StringIO(capsys.readouterr().out)) if r["table"] == "calibration"]
    assert float(next(r for r in table if r["group"] == "teachers")["ensemble_ece"]) == pytest.approx(expected)
    assert "## Calibration" in render(report, "md") and "Calibration" in render(report, "latex")
    assert json.loads(render(report, "json"))["calibration"][0]["bins"] == 10


# -- breakdown ---------------------------------------------------------------------------------------------
def test_breakdown_sums_back_to_the_overall_counts_and_scores_each_subgroup(study):
    from trainer.results import breakdown

    positions, ids, labels = study.split("test")
    predictions = study.mean_logits(TEACHERS, positions).argmax(1)
    result = breakdown(study.project, ids, labels, predictions)
    overall = score_of(labels, predictions)
    normal_hits = sum(1 for lab, g in zip(labels, predictions) if lab == 0 and g == 0)
    abnormal_hits = sum(1 for lab, g in zip(labels, predictions) if lab != 0 and g == lab)
    cycles = {c["id"]: c for c in study.cycles}
    for dimension in ("device", "chest_location", "age_group"):
        rows = result[dimension]
        assert sum(r["n"] for r in rows) == len(ids)
        assert sum(r["normal"] for r in rows) == int(np.sum(labels == 0))
        assert sum(r["normal_hits"] for r in rows) == normal_hits
        assert sum(r["abnormal_hits"] for r in rows) == abnormal_hits
        assert sum(np.sum(r["confusion"]) for r in rows) == len(ids)
    for row in result["device"]:
        chosen = [i for i, cid in enumerate(ids) if cycles[cid]["device"] == row["value"]]
        sp, se, score = score_of(labels[chosen], predictions[chosen])
        assert row["n"] == len(chosen) and (row["score"] == pytest.approx(score) or math.isnan(score))
    ages = {r["value"]: r["n"] for r in result["age_group"]}
    assert set(ages) == {"adult", "pediatric", "unknown"} and list(ages)[-1] == "unknown"
    pediatric = study.project.recordings("test")[0]["name"]  # the recording whose patient the fixture made 8
    assert ages["pediatric"] == sum(1 for cid in ids if cycles[cid]["recording"] == pediatric)
    assert not math.isnan(overall[2])


# -- label review -------------------------------------------------------------------------------------------
def test_label_review_ranks_by_confidence_and_skips_agreeing_cycles(study):
    from trainer.results import label_review

    probabilities = softmax_rows(study.mean_logits(TEACHERS, list(range(len(study.ids)))))
    expected = []
    for cid, label, p in zip(study.ids, study.labels, probabilities):
        guess = p.index(max(p))
        if guess != label and max(p) >= 0.5:
            expected.append((-max(p), cid, guess))
    expected.sort()
    result = label_review(study.project, "teachers", min_confidence=0.5)
    assert [c["cycle_id"] for c in result["cycles"]] == [cid for _, cid, _ in expected]
    assert [c["predicted"] for c in result["cycles"]] == [g for _, _, g in expected]
    probs = [c["probability"] for c in result["cycles"]]
    assert probs == sorted(probs, reverse=True) and all(p >= 0.5 for p in probs)
    assert result["disagreeing"] == sum(p.index(max(p)) != lab for p, lab in zip(probabilities, study.labels))
    assert result["listed"] == len(expected) > 0 and result["run_ids"] == TEACHERS
    first = result["cycles"][0]
    cycle = study.project.cycle(first["cycle_id"])
    assert (first["start"], first["end"], first["label"]) == (cycle["start"], cycle["end"], cycle["label"])
    assert first["recording"] == study.project.recording(cycle["recording_id"])["name"]
    assert first["probability"] == pytest.approx(-expected[0][0])
    assert label_review(study.project, "teachers", min_confidence=1.0)["listed"] == 0
    assert label_review(study.project, "teachers", min_confidence=0.5, limit=2)["listed"] == min(2, len(expected))
    only_test = label_review(study.project, "teachers", min_confidence=0.0, split="test")
    assert only_test["n_cycles"] == len(study.split("test")[1])


# -- comparing systems on a project ---------------------------------------------------------------------------
def test_compare_systems_agrees_with_an_independent_computation(study):
    from trainer.results import compare_systems, mcnemar, paired_bootstrap, welch

    positions, _, labels = study.split("test")
    ensemble = study.mean_logits(TEACHERS, positions).argmax(1)
    student = study.logits["s2"][positions].argmax(1)
    result = compare_systems(study.project, "group:teachers", "s2", n_resamples=500, seed=3)
    assert result["n_cycles"] == len(labels) and result["a"]["kind"] == "ensemble" and result["b"]["kind"] == "run"
    expected = zip(("sp", "se", "score"), score_of(labels, ensemble), score_of(labels, student))
    for key, expected_a, expected_b in expected:
        assert result["a"][key] == pytest.approx(expected_a) and result["b"][key] == pytest.approx(expected_b)
        assert result["difference"][key] == pytest.approx(expected_b - expected_a)
    assert result["bootstrap"] == paired_bootstrap(labels, ensemble == labels, student == labels, 500, 3)
    a_only = sum(1 for lab, x, y in zip(labels, ensemble, student) if x == lab and y != lab)
    b_only = sum(1 for lab, x, y in zip(labels, ensemble, student) if x != lab and y == lab)
    assert (result["mcnemar"]["a_only"], result["mcnemar"]["b_only"]) == (a_only, b_only)
    assert result["mcnemar"] == mcnemar(ensemble == labels, student == labels)
    assert result["seeds"] is None and any("several runs" in n for n in result["notes"])
    assert set(result["breakdown"]) == {"device", "chest_location", "age_group"}

    both = compare_systems(study.project, "group:teachers@3", "group:students@mean", n_resamples=200)
    scores_t = [score_of(labels, study.logits[r][positions].argmax(1))[2] for r in TEACHERS[:3]]
    scores_s = [score_of(labels, study.logits[r][positions].argmax(1))[2] for r in STUDENTS]
    assert both["a"]["run_ids"] == TEACHERS[:3] and both["b"]["score"] == pytest.approx(statistics.mean(scores_s))
    assert both["seeds"]["welch"] == welch(scores_t, scores_s)
    assert both["mcnemar"] is None and any("McNemar" in n for n in both["notes"])
    assert both["bootstrap"]["difference"] == pytest.approx(
        statistics.mean(scores_s) - score_of(labels, study.mean_logits(TEACHERS[:3], positions).argmax(1))[2])


def test_compare_refuses_systems_scored_on_different_cycles_and_unknown_names(study):
    from trainer.results import ComparisonError, compare_systems, parse_system

    n = len(study.split("test")[1])
    with pytest.raises(ComparisonError, match=f"group:teachers has logits on {n}, partial on {n - 3}, {n - 3} shared"):
        compare_systems(study.project, "group:teachers", "partial")
    with pytest.raises(ComparisonError, match="no run 'teachers'.*write group:teachers"):
        compare_systems(study.project, "teachers", "s1")
    with pytest.raises(ComparisonError, match="no group name"):
        parse_system("group:")
    assert parse_system("group:a@b") == ("group", "a@b", None)
    assert parse_system("group:x@mean") == ("group", "x", "mean") and parse_system("group:x@3") == ("group", "x", "3")
    assert parse_system("r1") == ("run", None, None)


def test_cli_compare_and_review_print_and_their_json_parses(study, capsys):
    from trainer.cli import build_parser, main

    path = str(study.project.path)
    assert main(["compare", path, "group:teachers", "group:students", "--bootstrap", "300", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    for piece in ("A  group:teachers: ensemble of 5 runs", "Score B - A:", "95% interval", "McNemar (",
                  "Across seeds: A 5 runs", "Welch t =", "device", "chest location", "age group", "ECE"):
        assert piece in text
    assert main(["compare", path, "group:teachers", "group:students", "--bootstrap", "300", "--seed", "1",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["bootstrap"]["resamples"] == 300 and data["a"]["run_ids"] == TEACHERS
    assert f"{data['bootstrap']['difference']:+.2f}" in text
    assert main(["compare", path, "group:teachers", "partial"]) == 2
    assert "shared" in capsys.readouterr().err
    assert main(["compare", path, "s1", "s2", "--bootstrap", "0"]) == 2
    help_text = build_parser()._subparsers._group_actions[0].choices["compare"].format_help()
    assert "group:NAME@mean" in help_text and "group:NAME@K" in help_text

    assert main(["review", path, "--teachers", "teachers", "--min-confidence", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "disagree with the stored label" in text and "predicted" in text
    assert main(["review", path, "--teachers", "teachers", "--min-confidence", "0.5", "--json"]) == 0
    review = json.loads(capsys.readouterr().out)
    assert review["listed"] == len(review["cycles"]) > 0 and str(review["cycles"][0]["cycle_id"]) in text
    assert main(["review", path, "--teachers", "teachers", "--min-confidence", "2"]) == 2
