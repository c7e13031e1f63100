"""The project file when the machine is against it (issue 8, items 16 and 17): read-only, locked, a full
disk, a damaged page. Each is one line naming the file and exit status 2, and nothing is changed.

Root ignores file modes, so when the tests run as root the read-only cases run `rsc` with the
capabilities that override them dropped (it stays root, so it can still read the test's private folder).
The full disk is an 8 MB tmpfs mounted in a private mount namespace (``unshare``), so nothing outside sees it.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from trainer.cli import main as rsc
from trainer.project import Project

REPO = Path(__file__).resolve().parents[2]
RSC = "import sys; from trainer.cli import main; sys.exit(main(sys.argv[1:]))"


# Linux capabilities that let root ignore file modes: CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER.
OVERRIDING_CAPABILITIES = (1, 2, 3)
PR_CAPBSET_DROP = 24


def rsc_bound_by_file_modes(*args) -> subprocess.CompletedProcess:
    """`rsc ARGS` in a process that file modes apply to, even when the tests run as root."""

    def drop_overrides():  # in the child, before exec: the new program never holds them
        if os.geteuid() == 0:
            libc = ctypes.CDLL(None, use_errno=True)
            for capability in OVERRIDING_CAPABILITIES:
                if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                    raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return subprocess.run(
        [sys.executable, "-c", RSC, *map(str, args)], preexec_fn=drop_overrides, capture_output=True, text=True,
        cwd=REPO, timeout=120,
    )


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def _write_audio(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        sf.write(folder / f"rec{i:02d}.wav", rng.normal(0, 0.1, 4000).astype(np.float32), 4000)
    (folder / "labels.csv").write_text("file,start,end,label\n" + "".join(f"rec{i:02d}.wav,0.1,0.6,normal\n" for i in range(count)))
    return folder


def _counts(path: Path) -> dict:
    with closing(sqlite3.connect(path)) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("recordings", "cycles", "cycle_edits", "imports", "patients")}
        counts["integrity"] = conn.execute("PRAGMA integrity_check").fetchone()[0]
    return counts


# -- read-only ---------------------------------------------------------------------------------------
@pytest.fixture
def read_only_project(tmp_path):
    """A project with two labelled recordings whose file can be read but not written (its folder can)."""
    audio = _write_audio(tmp_path / "audio", 2)
    project = tmp_path / "study" / "study.rsc"
    assert rsc(["import", "folder", str(project), str(audio), "--labels", str(audio / "labels.csv"), "--quiet"]) == 0
    assert rsc(["labels", "export", str(project), str(tmp_path / "all.csv")]) == 0
    project.chmod(0o444)
    yield project
    project.parent.chmod(0o755)  # so that pytest can remove it


@pytest.mark.parametrize("command", ["import", "labels import", "check"])
def test_a_read_only_project_file_is_one_line_and_is_not_changed(read_only_project, tmp_path, command):
    project, audio = read_only_project, tmp_path / "audio"
    if command == "check":
        (audio / "rec00.wav").rename(tmp_path / "moved.wav")  # so that check has a status to store
    args = {
        "import": ["import", "folder", project, audio, "--quiet"],
        "labels import": ["labels", "import", project, tmp_path / "all.csv", "--replace"],
        "check": ["check", project],
    }[command]
    before, counts = project.read_bytes(), _counts(project)
    result = rsc_bound_by_file_modes(*args)
    assert result.returncode == 2, result.stderr
    line = _one_line(result.stderr)
    assert f"{project} is read-only" in line and "open it writable or copy it" in line
    assert project.read_bytes() == before and _counts(project) == counts


def test_a_project_in_a_read_only_folder_is_one_line(read_only_project):
    read_only_project.parent.chmod(0o555)  # no -wal or -shm file can be made beside it
    result = rsc_bound_by_file_modes("stats", read_only_project)
    assert result.returncode == 2
    assert f"{read_only_project} is read-only" in _one_line(result.stderr)


def test_new_in_a_read_only_folder_is_one_line_and_leaves_nothing(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        for target in (folder / "new.rsc", folder / "sub" / "new.rsc"):
            result = rsc_bound_by_file_modes("new", target)
            assert result.returncode == 2
            assert f"cannot create {target}: Permission denied" in _one_line(result.stderr)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_a_project_file_that_cannot_be_read_is_one_line(tmp_path):
    project = tmp_path / "p.rsc"
    Project.create(project).close()
    project.chmod(0o000)
    result = rsc_bound_by_file_modes("stats", project)
    assert result.returncode == 2
    assert f"{project}: cannot be read (Permission denied)" in _one_line(result.stderr)


# -- a write lock held by another program ---------------------------------------------------------------
def test_a_write_lock_held_past_the_busy_timeout_is_one_line_naming_the_holder(tmp_path, capsys, monkeypatch):
    audio = _write_audio(tmp_path / "audio", 2)
    project = tmp_path / "p.rsc"
    assert rsc(["import", "folder", str(project), str(audio), "--labels", str(audio / "labels.csv"), "--quiet"]) == 0
    assert rsc(["labels", "export", str(project), str(tmp_path / "all.csv")]) == 0
    capsys.readouterr()
    before = _counts(project)
    monkeypatch.setenv("RSC_BUSY_TIMEOUT_S", "0.2")
    with closing(sqlite3.connect(project, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        assert rsc(["import", "folder", str(project), str(audio), "--quiet"]) == 2
        assert rsc(["labels", "import", str(project), str(tmp_path / "all.csv"), "--replace"]) == 2
        holder.execute("ROLLBACK")
    for line in capsys.readouterr().err.strip().splitlines():
        assert f"another program holds a write lock on {project} for more than 0.2 s (a running import or worker?)" in line
    assert _counts(project) == before


# -- a full disk --------------------------------------------------------------------------------------
FULL_DISK = r"""
import json, os, subprocess, sys
disk, audio = sys.argv[1], sys.argv[2]
project = os.path.join(disk, "p.rsc")

def rsc(*args):  # a process of its own each time, as a user runs it
    code = "import sys; from trainer.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args]).returncode

def fill(leave):
    fd = os.open(os.path.join(disk, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"x" * 65536)
    except OSError:
        pass
    os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    os.close(fd)

out = {}
fill(0)
out["new_on_a_full_disk"] = rsc("new", os.path.join(disk, "none.rsc"))
out["left_behind"] = sorted(name for name in os.listdir(disk) if name != "filler")
os.remove(os.path.join(disk, "filler"))
assert rsc("new", project) == 0
fill(64 * 1024)
out["import"] = rsc("import", "folder", project, audio, "--quiet")
os.remove(os.path.join(disk, "filler"))
fill(0)
out["stats_with_no_room_at_all"] = rsc("stats", project)
os.remove(os.path.join(disk, "filler"))
out["again"] = rsc("import", "folder", project, audio, "--quiet")
from trainer.project import Project
with Project.open(project) as p:
    out["recordings"] = p.db["recordings"].count
    out["integrity"] = p.db.execute("PRAGMA integrity_check").fetchone()[0]
    out["imports"] = [row["status"] for row in p.imports()]
print(json.dumps(out))
"""


def test_a_full_disk_is_one_line_and_the_import_runs_again_once_there_is_room(tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) to mount a small disk in a private namespace")
    disk = tmp_path / "disk"
    disk.mkdir()
    audio = _write_audio(tmp_path / "audio", 40)
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=8m tmpfs "$1" && shift && exec "$@"', "sh",
         str(disk), sys.executable, str(script), str(disk), str(audio)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    if "mount" in result.stderr and result.returncode and not result.stdout:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    errors = [line for line in result.stderr.splitlines() if line.startswith("rsc ")]
    assert "Traceback" not in result.stderr, result.stderr
    assert out["new_on_a_full_disk"] == 2 and out["left_behind"] == []
    assert any(f"rsc new: cannot create {disk}/none.rsc" in line or f"the disk holding {disk}/none.rsc is full" in line
               for line in errors), errors
    assert out["import"] == 2 and f"rsc import: the disk holding {disk}/p.rsc is full; free some space" in errors[-2]
    # Not even room for SQLite's shared-memory file: reported as the disk failing, with "full" as a cause.
    assert out["stats_with_no_room_at_all"] == 2 and f"rsc stats: {disk}/p.rsc: the disk failed" in errors[-1]
    assert "is it full" in errors[-1] and len(errors) == 3
    assert out["again"] == 0 and out["recordings"] == 40 and out["integrity"] == "ok"
    assert out["imports"] == ["done", "interrupted"]  # the one the full disk stopped says so


# -- a damaged page (item 17) ------------------------------------------------------------------------
def _cycles_pages(path: Path) -> tuple[int, int, int]:
    """(page size, the cycles table's root page, one of its leaf pages), read from the file's b-tree."""
    with closing(sqlite3.connect(path)) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'cycles'").fetchone()[0]
    with open(path, "rb") as handle:
        handle.seek((root - 1) * size)
        page = handle.read(size)
    assert page[0] == 0x05, "the cycles table should span more than one page"  # an interior table page
    return size, root, int.from_bytes(page[8:12], "big")  # its right-most child


@pytest.mark.parametrize("damage", ["leaf-overwritten", "leaf-zeroed", "root-zeroed", "cells-scrambled"])
def test_a_damaged_cycles_page_is_named_with_what_to_do(synth_project, capsys, damage):
    path = synth_project.path
    synth_project.close()
    size, root, leaf = _cycles_pages(path)
    data = bytearray(path.read_bytes())
    # The cells' content fills a page from its end: scrambling the last quarter garbles records.
    page, start = {"leaf-overwritten": (leaf, 0), "leaf-zeroed": (leaf, 0), "root-zeroed": (root, 0),
                   "cells-scrambled": (leaf, size * 3 // 4)}[damage]
    offset, length = (page - 1) * size + start, size if start == 0 else size // 4
    data[offset:offset + length] = bytes(length) if "zeroed" in damage else np.random.default_rng(1).bytes(length)
    path.write_bytes(bytes(data))
    before = path.read_bytes()
    commands = [["stats", str(path)], ["check", str(path)], ["labels", "export", str(path), str(path.parent / "out.csv")],
                ["import", "folder", str(path), str(path.parent)]]
    for command in commands:
        assert rsc(command) == 2, command
        line = _one_line(capsys.readouterr().err)
        assert f"{path} is damaged (" in line and f"restore a backup, or recover with `sqlite3 {path} .recover" in line
    assert path.read_bytes() == before and not (path.parent / "out.csv").exists()


def test_damage_found_by_a_later_read_is_named_the_same_way(tmp_path, capsys, monkeypatch):
    path = tmp_path / "p.rsc"
    Project.create(path).close()

    def malformed(self):
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(Project, "stats", malformed)
    assert rsc(["stats", str(path)]) == 2
    assert f"{path} is damaged (database disk image is malformed); restore a backup" in _one_line(capsys.readouterr().err)
