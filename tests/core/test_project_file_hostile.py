"""Hostile inputs given as the project file (issue 8): about a hundred generated cases, all fast.

Each is refused with one line that names the file and exit status 2, and leaves the input exactly as it
was: the same bytes, no -wal or -shm file, no artifacts folder. A few controls (odd names, a stray -wal)
must open normally.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from conftest import write_sqlite

from trainer.project.schema import SCHEMA_VERSION

from trainer.cli import main as rsc
from trainer.project import APPLICATION_ID, Project

PAGE = 4096


@pytest.fixture(scope="module")
def base_bytes(tmp_path_factory, synth_dir) -> bytes:
    """A real project's bytes: 24 recordings with their cycles and history, checkpointed into the one file."""
    from trainer.data.icbhi import import_icbhi

    path = tmp_path_factory.mktemp("hostile-base") / "base.rsc"
    with Project.create(path) as project:
        import_icbhi(project, synth_dir)
    return path.read_bytes()


@dataclass
class Case:
    name: str
    make: Callable[[Path, bytes], Path]  # (empty folder, a project's bytes) -> the path to give rsc
    refused: str | None = None  # a piece of the one-line message; None: the file must open normally
    # Links, folders and odd paths go through `rsc stats` only: `rsc import` would create a missing file.
    every_command: bool = True


def _file(data: Callable[[bytes], bytes], name: str = "study.rsc") -> Callable[[Path, bytes], Path]:
    def make(folder: Path, base: bytes) -> Path:
        path = folder / name
        path.write_bytes(data(base))
        return path
    return make


def _sqlite(*statements: str, wal: bool = False) -> Callable[[Path, bytes], Path]:
    return lambda folder, base: write_sqlite(folder / "study.rsc", *statements, wal=wal)


def _edited(*statements: str) -> Callable[[Path, bytes], Path]:
    """Our project with its meta or id changed by another tool (rollback journal, so the file holds it all)."""
    def make(folder: Path, base: bytes) -> Path:
        path = folder / "study.rsc"
        path.write_bytes(base)
        return write_sqlite(path, "PRAGMA journal_mode = DELETE", *statements)
    return make


def _overwrite(page: int, fill: str) -> Callable[[bytes], bytes]:
    def damage(base: bytes) -> bytes:
        data = bytearray(base)
        start = (page - 1) * PAGE
        data[start:start + PAGE] = bytes(PAGE) if fill == "zeros" else np.random.default_rng(page).bytes(PAGE)
        return bytes(data)
    return damage


def _header_field(offset: int, value: bytes) -> Callable[[bytes], bytes]:
    return lambda base: base[:offset] + value + base[offset + len(value):]


def _flip_kind_of_nth_filled_page(index: int) -> Callable[[bytes], bytes]:
    """Flip leaf/interior on the index-th b-tree page that holds cells.

    Chosen from the file itself, so a schema change that moves tables between pages keeps the case
    meaningful (an empty page made "interior" is the one flip quick_check cannot see).
    """
    def damage(base: bytes) -> bytes:
        filled = []
        for number in range(2, len(base) // PAGE + 1):
            start = (number - 1) * PAGE
            kind, cells = base[start], int.from_bytes(base[start + 3:start + 5], "big")
            if kind in (0x02, 0x05, 0x0A, 0x0D) and cells > 0:
                filled.append(start)
        start = filled[index % len(filled)]
        return base[:start] + bytes([base[start] ^ 0x08]) + base[start + 1:]
    return damage


def _random(size: int, prefix: bytes = b"") -> Callable[[bytes], bytes]:
    return lambda base: prefix + np.random.default_rng(size).bytes(size)


def _symlink(target: str) -> Callable[[Path, bytes], Path]:
    def make(folder: Path, base: bytes) -> Path:
        (folder / "study.rsc").symlink_to(target)
        if target == "other.rsc":
            (folder / "other.rsc").symlink_to("study.rsc")
        if target == "a-folder":
            (folder / "a-folder").mkdir()
        return folder / "study.rsc"
    return make


def _fifo(folder: Path, base: bytes) -> Path:
    os.mkfifo(folder / "study.rsc")
    return folder / "study.rsc"


def _folder(folder: Path, base: bytes) -> Path:
    (folder / "study.rsc").mkdir()
    return folder / "study.rsc"


def _artifacts_is_a_file(folder: Path, base: bytes) -> Path:
    (folder / "study.rsc").write_bytes(base)
    (folder / "study.rsc.d").write_text("not a folder")
    return folder / "study.rsc"


def _stray_wal(folder: Path, base: bytes) -> Path:
    (folder / "study.rsc").write_bytes(base)
    (folder / "study.rsc-wal").write_bytes(np.random.default_rng(7).bytes(3 * PAGE))
    return folder / "study.rsc"


def _cases() -> list[Case]:
    cases = [Case("zero-length", _file(lambda b: b""), "empty file")]
    # Cut short anywhere: inside the magic, inside the header, at and around page boundaries.
    for size in (1, 8, 15, 16, 17, 50, 99):
        cases.append(Case(f"truncated-at-{size}", _file(lambda b, n=size: b[:n]), "not an RSC Studio project"))
    for size in (100, 101, 1000, PAGE - 1, PAGE, PAGE + 1, 2 * PAGE, 3 * PAGE + 7, 5 * PAGE, 8 * PAGE):
        cases.append(Case(f"truncated-at-{size}", _file(lambda b, n=size: b[:n]), "is damaged"))
    for fraction in (0.25, 0.5, 0.75, 0.9, 0.99):
        cases.append(Case(f"truncated-to-{fraction:.0%}",
                          _file(lambda b, f=fraction: b[:int(len(b) * f) // PAGE * PAGE]), "is damaged"))
    cases.append(Case("last-page-missing", _file(lambda b: b[:-PAGE]), "is damaged"))
    # A cut inside the last page: SQLite would read the missing bytes as zeros, and quick_check cannot tell.
    for cut in (1, 100, PAGE // 2):
        cases.append(Case(f"last-{cut}-bytes-missing", _file(lambda b, n=cut: b[:-n]), "not a whole number of 4096-byte pages"))
    cases.append(Case("garbage-appended", _file(lambda b: b + b"\xff" * 100), "not a whole number of 4096-byte pages"))

    # Random bytes, with and without an SQLite header in front.
    for size in (1, 10, 100, 4096, 65536, 300_000):
        cases.append(Case(f"random-{size}-bytes", _file(_random(size)), "not an SQLite file"))
    for size in (84, 4080, 50_000):
        cases.append(Case(f"sqlite-magic-then-random-{size}", _file(_random(size, b"SQLite format 3\x00")), "is damaged"))
    cases.append(Case("our-header-then-random", _file(lambda b: b[:100] + np.random.default_rng(3).bytes(len(b) - 100)),
                      "is damaged"))
    cases.append(Case("text-file", _file(lambda b: b"recordings, cycles\n" * 50), "not an SQLite file"))
    cases.append(Case("zip-file", _file(lambda b: b"PK\x03\x04" + bytes(200)), "not an SQLite file"))
    # One page damaged: every page of a fresh project is in use, so each is noticed.
    for page in (2, 3, 5, 8, 13, 21, 30, 40):
        cases.append(Case(f"page-{page}-random", _file(_overwrite(page, "random")), "is damaged"))
    for page in (4, 10, 20):
        cases.append(Case(f"page-{page}-zeroed", _file(_overwrite(page, "zeros")), "is damaged"))
    cases.append(Case("page-1-zeroed", _file(_overwrite(1, "zeros")), "not an SQLite file"))
    # One byte: the page's kind. (An empty index's page made "interior" passes quick_check, and is
    # reported as damaged only when a query reaches it; see test_project_file_faults.)
    for index in (1, 4, 9, 15, 22):
        cases.append(Case(f"filled-page-{index}-kind-flipped", _file(_flip_kind_of_nth_filled_page(index)), "is damaged"))
    # Header fields no SQLite file has.
    for name, offset, value in [("page-size-3", 16, b"\x00\x03"), ("page-size-0", 16, b"\x00\x00"),
                                ("write-version-9", 18, b"\x09"), ("read-version-9", 19, b"\x09"),
                                ("payload-fraction-0", 21, b"\x00"), ("schema-format-9", 44, b"\x00\x00\x00\x09"),
                                ("text-encoding-7", 56, b"\x00\x00\x00\x07")]:
        cases.append(Case(f"header-{name}", _file(_header_field(offset, value)), "study.rsc"))
    # Another program's SQLite files.
    cases += [
        Case("other-program-rollback", _sqlite("CREATE TABLE notes (x)", "INSERT INTO notes VALUES (1)"), "without the project's tables"),
        Case("other-program-wal", _sqlite("CREATE TABLE notes (x)", wal=True), "without the project's tables"),
        Case("other-program-empty-database", _sqlite("PRAGMA user_version = 1"), "without the project's tables"),
        Case("other-program-clashing-recordings", _sqlite("CREATE TABLE recordings (id INTEGER PRIMARY KEY, x)"), "without the project's tables"),
        Case("other-program-clashing-recordings-wal", _sqlite("CREATE TABLE recordings (x)", wal=True), "without the project's tables"),
        Case("other-program-with-its-id", _sqlite("PRAGMA application_id = 1598903374", "CREATE TABLE t (x)"), "another program's SQLite file"),
        Case("other-program-meta-table", _sqlite("CREATE TABLE meta (key, value)", "INSERT INTO meta VALUES ('schema_version', '1')"), "without the project's tables"),
        Case("our-project-under-another-id", _edited("PRAGMA application_id = 7"), "another program's SQLite file"),
        Case("our-tables-but-no-id-nor-version", _edited("PRAGMA application_id = 0", "DELETE FROM meta"), "no schema version"),
        Case("our-id-but-no-version", _edited("DELETE FROM meta"), "its tables have no schema version"),
        Case("our-id-but-the-meta-table-dropped", _edited("DROP TABLE meta"), "its tables have no schema version"),
        Case("our-id-but-the-cycles-table-dropped", _edited("DROP TABLE cycle_edits", "DROP TABLE cycles"),
             "its cycle_edits, cycles table(s) are missing"),
    ]
    # Our tables, but a schema this version does not know.
    for value in (str(SCHEMA_VERSION + 1), "99", "2147483648"):
        cases.append(Case(f"newer-schema-{value}", _edited(f"UPDATE meta SET value = '{value}' WHERE key = 'schema_version'"), "newer RSC Studio"))
    cases.append(Case("newer-schema-without-id", _edited("PRAGMA application_id = 0", "UPDATE meta SET value = '999' WHERE key = 'schema_version'"), "newer RSC Studio"))
    cases.append(Case("schema-version-text", _edited("UPDATE meta SET value = 'three' WHERE key = 'schema_version'"), "schema version 'three'"))
    cases.append(Case("schema-version-null", _edited("UPDATE meta SET value = NULL WHERE key = 'schema_version'"), "schema version None"))
    # Not a file at all.
    cases += [
        Case("a-folder", _folder, "a folder, not a project file", every_command=False),
        Case("symlink-to-itself", _symlink("study.rsc"), "a loop of symbolic links", every_command=False),
        Case("symlink-loop-of-two", _symlink("other.rsc"), "a loop of symbolic links", every_command=False),
        Case("symlink-to-nothing", _symlink("gone.rsc"), "no such project file", every_command=False),
        Case("symlink-to-a-folder", _symlink("a-folder"), "a folder, not a project file", every_command=False),
        Case("fifo", _fifo, "not a regular file", every_command=False),
        Case("name-too-long", lambda folder, base: folder / ("x" * 300 + ".rsc"), "cannot be read (File name too long)", every_command=False),
        Case("artifacts-folder-is-a-file", _artifacts_is_a_file, "cannot make its artifacts folder", every_command=False),
    ]
    # Controls: these are projects and must open.
    cases += [
        Case("control-plain", _file(lambda b: b)),
        Case("control-uri-characters-in-the-name", _file(lambda b: b, name="we?ird #1 %20&mode=ro.rsc")),
        Case("control-name-not-utf8", _file(lambda b: b, name="caf\udce9.rsc")),
        Case("control-stray-wal-of-garbage", _stray_wal),
        # SQLite reads only the pages its header counts: whole pages added at the end change nothing.
        Case("control-a-random-page-appended", _file(lambda b: b + np.random.default_rng(5).bytes(PAGE))),
        Case("control-two-copies-end-to-end", _file(lambda b: b + b)),
    ]
    return cases


CASES = _cases()
COMMANDS = (["stats"], ["check"], ["labels", "export"], ["import", "folder"])


def _state(folder: Path) -> dict:
    """Everything in a folder: names, kinds, bytes, link targets."""
    state = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            state[path.name] = ("link", os.readlink(path))
        elif stat.S_ISREG(info.st_mode):
            state[path.name] = ("file", path.read_bytes())
        else:
            state[path.name] = ("other", stat.S_IFMT(info.st_mode))
    return state


def test_the_suite_is_about_a_hundred_cases():
    assert len(CASES) >= 90 and len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_hostile_project_file_is_one_clear_line_and_left_as_it_was(case, tmp_path, base_bytes, capsys):
    folder = tmp_path / "case"
    folder.mkdir()
    path = case.make(folder, base_bytes)
    if case.refused is None:
        before = path.read_bytes()
        assert rsc(["stats", str(path)]) == 0, capsys.readouterr().err
        assert path.read_bytes() == before
        return
    command = COMMANDS[CASES.index(case) % len(COMMANDS)] if case.every_command else ["stats"]
    extra = {"labels": [str(tmp_path / "out.csv")], "import": [str(tmp_path)]}.get(command[0], [])
    before = _state(folder)
    code = rsc([*command, str(path), *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"rsc {command[0]}: ") and case.refused in lines[0], lines[0]
    named = {str(path), os.path.realpath(path)}
    assert any(name in lines[0] for name in named) or str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace") in lines[0]
    assert _state(folder) == before  # same bytes; no -wal, -shm or .d made beside it
    assert not (tmp_path / "out.csv").exists()


def test_a_project_survives_the_controls_and_the_id_is_ours(tmp_path, base_bytes):
    path = tmp_path / "p.rsc"
    path.write_bytes(base_bytes)
    assert int.from_bytes(base_bytes[68:72], "big") == APPLICATION_ID
    with Project.open(path) as project:
        assert project.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
