"""The command line's last line of defence (issue 8): failures the commands do not catch become one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from trainer.cli import main as rsc
from trainer.project import Project

REPO = Path(__file__).resolve().parents[2]


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path):
    path = tmp_path / "p.rsc"
    Project.create(path).close()
    proc = subprocess.Popen([sys.executable, "-m", "trainer.cli", "stats", str(path)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `rsc stats | head -0`
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_an_os_error_on_a_named_file_is_one_line(tmp_path, capsys, monkeypatch):
    path = tmp_path / "p.rsc"
    Project.create(path).close()

    def refused(self):
        raise PermissionError(13, "Permission denied", "/nowhere/out.csv")

    monkeypatch.setattr(Project, "stats", refused)
    assert rsc(["stats", str(path)]) == 2
    assert capsys.readouterr().err.strip() == "rsc stats: /nowhere/out.csv: Permission denied"


def test_an_import_into_a_dangling_link_is_refused_and_creates_nothing_through_it(tmp_path, synth_dir, capsys):
    from trainer.cli import main

    target = tmp_path / "elsewhere" / "p.rsc"
    target.parent.mkdir()
    link = tmp_path / "p.rsc"
    link.symlink_to(target)
    code = main(["import", "icbhi", str(link), str(synth_dir), "--quiet"])
    assert code == 2
    assert not target.exists() and "p.rsc" in capsys.readouterr().err
