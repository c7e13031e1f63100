"""The layout rules a reviewer would otherwise check by hand: layers, one owner for runs, small files."""

from __future__ import annotations

import re
from pathlib import Path

from importlinter import api as importlinter_api  # noqa: F401  (a required dev dependency: fail, never skip)
from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted([*REPO.glob("trainer/**/*.py"), *REPO.glob("rscapp/**/*.py")])
MAX_LINES = 400
# SQL that touches the tables trainer.runs owns; only that package (and the schema) may hold it.
RUNS_SQL = re.compile(r"\b(FROM|INTO|UPDATE|JOIN|TABLE)\s+(runs|run_epochs|outputs|checkpoints|cycle_sets|cycle_set_members)\b",
                      re.IGNORECASE)
RUNS_OWNER = ("trainer/runs/", "trainer/project/schema.py")


def test_the_import_contracts_in_pyproject_hold(monkeypatch):
    monkeypatch.chdir(REPO)
    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True) == 0


def test_only_the_runs_owner_speaks_sql_to_the_runs_tables():
    offenders = []
    for path in SOURCES:
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith(RUNS_OWNER):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if RUNS_SQL.search(line) and ("SELECT" in line.upper() or "INSERT" in line.upper()
                                          or "UPDATE" in line.upper() or "DELETE" in line.upper()
                                          or "JOIN" in line.upper()):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "SQL on runs/run_epochs/outputs outside trainer/runs:\n" + "\n".join(offenders)


def test_no_source_file_is_over_400_lines_without_a_reason_on_its_first_line():
    long = []
    for path in SOURCES:
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_LINES and not (lines and lines[0].startswith("# Over 400 lines:")):
            long.append(f"{path.relative_to(REPO)}: {len(lines)} lines")
    assert not long, "files over 400 lines (give a one-line reason as '# Over 400 lines: ...'):\n" + "\n".join(long)
