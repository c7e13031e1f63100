"""Label files in and out: ICBHI txt, CSV, Audacity labels, Praat TextGrid (trainer.labelfiles, no Qt)."""

from __future__ import annotations

import pytest

from trainer.labelfiles import (
    FORMATS,
    LabelError,
    detect_format,
    export_labels,
    format_textgrid,
    import_labels,
    parse_icbhi,
    parse_textgrid,
    read_labels,
    validate,
)
from trainer.vocab import LABELS

EXT = {"icbhi": ".txt", "csv": ".csv", "audacity": ".txt", "textgrid": ".TextGrid"}


@pytest.fixture
def demo(tmp_path):
    from trainer.data.demo import create_demo_project

    project = create_demo_project(tmp_path / "demo.rsc", recordings=3, seed=1)
    yield project
    project.close()


def live(project, rid):
    return [(c["start"], c["end"], c["label"]) for c in project.cycles(recording_id=rid)]


def counts(project):
    return (
        project.db.execute("SELECT count(*) FROM cycles").fetchone()[0],
        project.db.execute("SELECT count(*) FROM cycle_edits").fetchone()[0],
    )


def relabel_some(project, rid):
    """Make the label set differ from the dataset's so a round trip is not trivially equal."""
    rows = project.cycles(recording_id=rid)
    for i, row in enumerate(rows[:4]):
        project.update_cycle(row["id"], label=(row["label"] + i + 1) % 4)
    return live(project, rid)


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_then_import_replace_round_trips(demo, tmp_path, fmt):
    rid = demo.recordings()[0]["id"]
    before = relabel_some(demo, rid)
    assert len({label for _, _, label in before}) > 1
    out = export_labels(demo, tmp_path / f"labels{EXT[fmt]}", fmt, [rid])
    assert detect_format(out) == fmt
    old_ids = [c["id"] for c in demo.cycles(recording_id=rid)]
    imports_before = demo.db["imports"].count

    results = import_labels(demo, out, recording_id=rid, mode="replace")

    after = live(demo, rid)
    assert len(after) == len(before)
    for (s0, e0, l0), (s1, e1, l1) in zip(before, after):
        assert abs(s0 - s1) < 1e-6 and abs(e0 - e1) < 1e-6 and l0 == l1
    new_rows = demo.cycles(recording_id=rid)
    assert all(row["origin"] == "user" for row in new_rows)
    assert not set(old_ids) & {row["id"] for row in new_rows}
    assert sorted(results[0].deleted) == sorted(old_ids)
    # every imported cycle has its history row, and the replaced ones say why they went
    for row in new_rows:
        history = demo.cycle_history(cycle_id=row["id"])
        assert [h["action"] for h in history] == ["import"]
        assert history[0]["after"]["label"] == row["label"]
    gone = demo.cycle_history(cycle_id=old_ids[0])
    assert gone[-1]["action"] == "delete" and "replaced by import" in gone[-1]["reason"]
    assert demo.db["imports"].count == imports_before + 1


def test_textgrid_has_gaps_as_empty_intervals_and_reads_the_short_format(demo, tmp_path):
    rid = demo.recordings()[0]["id"]
    rows = demo.cycles(recording_id=rid)
    text = format_textgrid([_Interval(r) for r in rows], duration=20.0)
    assert 'name = "cycles"' in text
    assert text.count('text = ""') >= 1  # the lead-in before the first cycle at least
    parsed = parse_textgrid(text)
    assert [(i.start, i.end, i.label) for i in parsed] == [(r["start"], r["end"], r["label"]) for r in rows]

    short = (
        'File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n3.5\n<exists>\n2\n'
        '"TextTier"\n"clicks"\n0\n3.5\n1\n1.2\n"click"\n'
        '"IntervalTier"\n"cycles"\n0\n3.5\n4\n0\n0.5\n""\n0.5\n1.75\n"crackle"\n1.75\n3\n"both"\n3\n3.5\n""\n'
    )
    path = tmp_path / "short.TextGrid"
    path.write_bytes(short.encode("utf-16"))  # Praat's own encoding, with a byte-order mark
    fmt, items = read_labels(path)
    assert fmt == "textgrid"
    assert [(i.start, i.end, LABELS[i.label]) for i in items] == [(0.5, 1.75, "crackle"), (1.75, 3.0, "both")]


class _Interval:
    def __init__(self, row):
        self.start, self.end, self.crackle, self.wheeze = row["start"], row["end"], row["crackle"], row["wheeze"]
        self.file = None

    @property
    def label(self):
        return self.crackle + 2 * self.wheeze


@pytest.mark.parametrize(
    "name, text, line, words",
    [
        ("cols.txt", "0.1\t0.9\t0\t0\n1.0\t2.0\t1\n", 2, "expected 4 columns"),
        ("nan.txt", "0.1\t0.9\t0\t0\nabc\t2.0\t1\t0\n", 2, "'abc' is not a number"),
        ("flag.txt", "0.1\t0.9\t0\t2\n", 1, "wheeze must be 0 or 1"),
        ("order.txt", "0.1\t0.9\t0\t0\n\n2.5\t2.0\t0\t0\n", 3, "not before end"),
        ("overlap.txt", "0.1\t0.9\t0\t0\n2.0\t3.0\t0\t0\n0.8\t1.5\t1\t0\n", 3, "overlaps 0.1-0.9 s (line 1)"),
        ("past.txt", "0.1\t0.9\t0\t0\n19.5\t21.0\t0\t0\n", 2, "past the end of the recording"),
        ("negative.txt", "-0.5\t0.9\t0\t0\n", 1, "before the recording starts"),
    ],
)
def test_bad_icbhi_files_name_file_and_line_and_change_nothing(demo, tmp_path, name, text, line, words):
    rid = demo.recordings()[0]["id"]
    before = counts(demo), live(demo, rid), demo.db["imports"].count
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(LabelError) as info:
        import_labels(demo, path, recording_id=rid, fmt="icbhi", mode="replace")
    assert info.value.file == str(path) and info.value.line == line
    assert f"{path}:{line}: " in str(info.value) and words in str(info.value)
    assert (counts(demo), live(demo, rid), demo.db["imports"].count) == before


def test_other_formats_report_bad_lines(tmp_path):
    cases = [
        ("a.txt", "audacity", "0.5\t1.0\tcrackle\n\\\t100\t2000\n1.0\t2.0\tsqueak\n", 3, "unknown label 'squeak'"),
        ("b.csv", "csv", "file,start,end,label\nrec,0.5,1.0,normal\nrec,1.0\n", 3, "expected 4 fields"),
        ("c.csv", "csv", "name,begin,finish\nrec,0.5,1.0\n", 1, "header lacks start, end"),
        ("d.csv", "csv", "file,start,end,label,crackle,wheeze\nrec,0.5,1.0,wheeze,1,0\n", 2, "disagrees"),
        ("e.TextGrid", "textgrid", 'File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = oops\n', 5, "xmax = 'oops'"),
    ]
    for name, fmt, text, line, words in cases:
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(LabelError) as info:
            read_labels(path, fmt)
        assert info.value.line == line, (name, str(info.value))
        assert words in str(info.value), (name, str(info.value))


def test_a_cycle_overlapping_an_existing_one_rolls_back_a_merge(demo, tmp_path):
    rid = demo.recordings()[0]["id"]
    rows = demo.cycles(recording_id=rid)
    before = counts(demo), live(demo, rid)
    gap_start = rows[0]["end"]
    gap_end = rows[1]["start"]
    assert gap_end - gap_start > 0.05
    path = tmp_path / "merge.txt"
    # line 1 relabels the first cycle (same span), line 2 fits in the first gap, line 3 overlaps cycle 2
    path.write_text(
        f"{rows[0]['start']}\t{rows[0]['end']}\t1\t1\n"
        f"{gap_start + 0.01}\t{gap_end - 0.01}\t0\t1\n"
        f"{rows[1]['start'] + 0.1}\t{rows[1]['end'] + 0.1}\t0\t0\n"
    )
    with pytest.raises(LabelError) as info:
        import_labels(demo, path, recording_id=rid, fmt="icbhi", mode="merge")
    assert info.value.line == 3 and "overlap" in str(info.value)
    assert (counts(demo), live(demo, rid)) == before

    path.write_text("".join(path.read_text().splitlines(keepends=True)[:2]))
    (result,) = import_labels(demo, path, recording_id=rid, fmt="icbhi", mode="merge")
    assert result.relabelled == [(rows[0]["id"], rows[0]["label"], 3)] or rows[0]["label"] == 3
    assert len(result.added) == 1 and not result.deleted
    after = demo.cycles(recording_id=rid)
    assert len(after) == len(rows) + 1
    assert demo.cycle(rows[0]["id"])["label"] == 3
    added = demo.cycle(result.added[0])
    assert (added["origin"], added["label"], added["source_line"]) == ("user", 2, 2)


def test_csv_of_the_whole_project_round_trips_by_recording_name(demo, tmp_path):
    recs = demo.recordings()
    for rec in recs:
        relabel_some(demo, rec["id"])
    before = {rec["id"]: live(demo, rec["id"]) for rec in recs}
    path = export_labels(demo, tmp_path / "all.csv")
    assert path.read_text().splitlines()[0] == "file,start,end,label,crackle,wheeze"
    results = import_labels(demo, path, mode="replace")
    assert sorted(r.recording_id for r in results) == sorted(before)
    for rid, rows in before.items():
        assert [(round(s, 6), round(e, 6), l) for s, e, l in live(demo, rid)] == [
            (round(s, 6), round(e, 6), l) for s, e, l in rows
        ]
    # a CSV naming a recording the project lacks is refused as a whole
    bad = tmp_path / "bad.csv"
    bad.write_text(path.read_text() + "no_such_recording,0.1,0.2,normal,0,0\n")
    snapshot = counts(demo)
    with pytest.raises(LabelError, match="no recording named 'no_such_recording'"):
        import_labels(demo, bad, mode="replace")
    assert counts(demo) == snapshot


def test_detect_format_tells_icbhi_from_audacity(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("0.036\t0.579\t0\t0\n")
    b = tmp_path / "b.txt"
    b.write_text("0.036000\t0.579000\twheeze\n")
    c = tmp_path / "c.txt"
    c.write_text(format_textgrid([]))
    assert [detect_format(p) for p in (a, b, c)] == ["icbhi", "audacity", "textgrid"]


def test_validate_sorts_and_accepts_touching_cycles():
    items = parse_icbhi("1.0\t2.0\t0\t0\n0.0\t1.0\t1\t0\n")
    ordered = validate(items, duration=2.0)
    assert [(i.start, i.end) for i in ordered] == [(0.0, 1.0), (1.0, 2.0)]


def test_real_icbhi_annotations_parse_and_fit_their_audio(icbhi_dir):
    from trainer.audio import audio_info

    files = sorted((icbhi_dir / "ICBHI_final_database").glob("*.txt"))
    assert len(files) > 25
    total = 0
    for index, path in enumerate(files):
        fmt, items = read_labels(path)
        assert fmt == "icbhi", path
        wav = path.with_suffix(".wav")
        duration = audio_info(wav)["duration"] if index < 25 and wav.exists() else None
        total += len(validate(items, duration, str(path)))
    assert total > 10 * len(files) // 2  # ICBHI has about 7.5 cycles per recording


def test_one_icbhi_parser_reports_every_bad_line_or_raises_at_the_first():
    text = "0.1\t0.9\t0\t0\nfour\tfields\tnot\tnumbers\n1.0\t2.0\t1\n2.0\t3.0\t1.0\t0\n3.0\t4.0\t0\t2\n"
    with pytest.raises(LabelError) as info:
        parse_icbhi(text, "a.txt")
    assert (info.value.file, info.value.line) == ("a.txt", 2)
    errors = []
    items = parse_icbhi(text, "a.txt", on_error=errors.append)
    assert [(i.line, i.crackle) for i in items] == [(1, 0), (4, 1)]  # a flag written 1.0 is 1, as spreadsheets write it
    assert [(e.line, e.message.split(" ")[0]) for e in errors] == [(2, "start"), (3, "expected"), (5, "wheeze")]


def test_merge_takes_a_span_within_the_cycle_tolerance_for_the_same_cycle(demo, tmp_path):
    from trainer.project import CYCLE_TOLERANCE

    rid = demo.recordings()[0]["id"]
    row = demo.cycles(recording_id=rid)[0]
    shift = CYCLE_TOLERANCE / 2
    path = tmp_path / "nudged.txt"
    path.write_text(f"{row['start'] + shift}\t{row['end'] - shift}\t1\t1\n")
    (result,) = import_labels(demo, path, recording_id=rid, fmt="icbhi", mode="merge")
    assert not result.added and (result.relabelled or result.unchanged)
    assert demo.cycle(row["id"])["label"] == 3


def _grid_with_interval_count(demo, rid, count: str) -> str:
    text = format_textgrid(cycles_of_project(demo, rid), duration=20.0)
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if "intervals: size" in line)
    lines[index] = f"        intervals: size = {count} "
    return "\n".join(lines) + "\n", index + 1


def cycles_of_project(demo, rid):
    from trainer.labelfiles import cycles_of

    return cycles_of(demo, rid)


@pytest.mark.parametrize(
    "count, words",
    [("-3", "is -3: it must be a whole number"), ("1e400", "1e400 is beyond the range of a number"),
     ("2.5", "is 2.5: it must be a whole number"), ("100000", "but only")],
)
def test_a_textgrid_with_an_impossible_interval_count_is_refused_at_its_line(demo, tmp_path, count, words):
    rid = demo.recordings()[0]["id"]
    before = counts(demo), live(demo, rid)
    text, line = _grid_with_interval_count(demo, rid, count)
    path = tmp_path / "bad.TextGrid"
    path.write_text(text)
    with pytest.raises(LabelError) as info:
        import_labels(demo, path, recording_id=rid, mode="replace")
    assert (info.value.file, info.value.line) == (str(path), line) and words in str(info.value)
    assert (counts(demo), live(demo, rid)) == before


def _rsc(*argv):
    from trainer.cli import main

    return main([str(a) for a in argv])


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n"], ids=["empty", "blank", "comment"])
def test_an_empty_label_file_is_refused_unless_replace_is_asked_for(demo, tmp_path, capsys, content):
    rec = demo.recordings()[0]
    n = len(demo.cycles(rec["id"]))
    before = counts(demo)
    path = tmp_path / "empty.txt"
    path.write_text(content)
    assert _rsc("labels", "import", demo.path, path, "--recording", rec["name"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path}: holds no cycles" in err and f"delete all {n} of them" in err and "--replace" in err
    assert counts(demo) == before
    assert _rsc("labels", "import", demo.path, path, "--recording", rec["name"], "--replace") == 0
    assert capsys.readouterr().out.strip() == f"0 added, {n} replaced"
    assert demo.cycles(rec["id"]) == []
    assert "--replace" in _help("labels", "import")


def _help(*argv) -> str:
    from trainer.cli import build_parser

    parser = build_parser()
    for name in argv:
        parser = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices[name]
    return parser.format_help()


def test_export_to_a_path_that_cannot_be_written_is_one_line(demo, tmp_path, capsys):
    rec = demo.recordings()[0]
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    folder = tmp_path / "a-folder.csv"
    folder.mkdir()
    for target in (blocker / "labels.csv", folder):
        assert _rsc("labels", "export", demo.path, target, "--recording", rec["name"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"rsc labels: {target}: cannot write"), err
    assert blocker.read_text() == "x" and list(folder.iterdir()) == []


def test_a_label_file_whose_name_is_not_utf8_imports_and_is_logged_printably(demo, tmp_path, capsys):
    import os

    rec = demo.recordings()[0]
    path = os.fsdecode(os.fsencode(tmp_path) + b"/cycles-\xe9.txt")
    with open(path, "w") as handle:
        handle.write("0.5\t1.5\t1\t0\n")
    assert _rsc("labels", "import", demo.path, path, "--recording", rec["name"], "--format", "icbhi") == 0
    [logged] = demo.query("SELECT source FROM imports WHERE kind = 'labels:icbhi'")
    assert logged["source"] == f"{tmp_path}/cycles-\\xe9.txt"
    assert live(demo, rec["id"]) == [(0.5, 1.5, 1)]
