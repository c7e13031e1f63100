import json
import subprocess
import sys
from pathlib import Path

from trainer.cli import main as rsc

REPO = Path(__file__).resolve().parents[2]


def test_synth_import_stats_check(tmp_path, capsys):
    data = tmp_path / "data"
    assert rsc(["synth", str(data), "--recordings", "6", "--seed", "2", "--duration", "8"]) == 0
    project = tmp_path / "study.rsc"
    assert rsc(["new", str(project)]) == 0
    assert rsc(["import", "icbhi", str(project), str(data), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "added 6" in out and "0 error(s)" in out
    assert rsc(["stats", str(project), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["recordings"]["train"] + stats["recordings"]["test"] == 6
    assert rsc(["stats", str(project)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["cycles", "normal", "crackle", "wheeze", "both", "total"]
    wav = next((data / "ICBHI_final_database").glob("*.wav"))
    wav.rename(tmp_path / wav.name)
    assert rsc(["check", str(project)]) == 0
    captured = capsys.readouterr()
    assert "1 missing" in captured.out and wav.stem in captured.err


def test_errors_are_one_line_with_exit_status_2(tmp_path, capsys):
    assert rsc(["stats", str(tmp_path / "absent.rsc")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rsc stats:") and "no such project file" in err and "Traceback" not in err
    (tmp_path / "x.rsc").write_text("not sqlite")
    assert rsc(["new", str(tmp_path / "x.rsc")]) == 2


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "trainer.cli", "--help"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0
    for command in ("new", "import", "stats", "synth", "check"):
        assert command in result.stdout


def test_labels_export_then_import_round_trip(synth_project, tmp_path, capsys):
    path = str(synth_project.path)
    rec = synth_project.recordings()[0]
    before = [(c["start"], c["end"], c["label"]) for c in synth_project.cycles(rec["id"])]
    grid = tmp_path / "cycles.TextGrid"
    assert rsc(["labels", "export", path, str(grid), "--recording", rec["name"]]) == 0
    assert "IntervalTier" in grid.read_text()
    everything = tmp_path / "all.csv"
    assert rsc(["labels", "export", path, str(everything)]) == 0
    assert len(everything.read_text().splitlines()) == 1 + synth_project.db["cycles"].count
    first = synth_project.cycles(rec["id"])[0]
    synth_project.update_cycle(first["id"], label=(first["label"] + 1) % 4)
    assert rsc(["labels", "import", path, str(grid), "--recording", rec["name"]]) == 0
    assert "added" in capsys.readouterr().out
    after = [(c["start"], c["end"], c["label"]) for c in synth_project.cycles(rec["id"])]
    assert after == before  # the file's labels replaced the edit; the edit stays in the history
    assert rsc(["labels", "import", path, str(grid), "--recording", "nope"]) == 2
    assert "no recording named 'nope'" in capsys.readouterr().err
