"""Shared fixtures. Environment set here must be in place before Qt or PortAudio load."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# PortAudio reads ALSA's config from $HOME: a `null` default device lets playback code run on machines with no
# sound card (CI). A user's real HOME is never touched.
_HOME = Path(tempfile.mkdtemp(prefix="rsc-test-home-"))
(_HOME / ".asoundrc").write_text("pcm.!default { type null }\nctl.!default { type hw card 0 }\n")
os.environ["HOME"] = str(_HOME)
os.environ.setdefault("XDG_CONFIG_HOME", str(_HOME / ".config"))

REPO = Path(__file__).resolve().parents[1]
ICBHI_DIR = REPO.parent / "shared" / "data" / "icbhi"


@pytest.fixture(scope="session")
def icbhi_dir() -> Path:
    """The real ICBHI files beside the checkout (../shared/data/icbhi); skips where a clone has none."""
    if not (ICBHI_DIR / "ICBHI_final_database").is_dir():
        pytest.skip(f"real ICBHI files not found at {ICBHI_DIR} (they sit beside the checkout in CI only)")
    return ICBHI_DIR


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A small synthetic ICBHI-layout dataset, written once per test session (read-only for tests)."""
    from trainer.data.synth import write_synthetic_dataset

    out = tmp_path_factory.mktemp("synth")
    write_synthetic_dataset(out, recordings=24, seed=0)
    return out


@pytest.fixture
def synth_project(tmp_path, synth_dir):
    """A fresh project with the synthetic dataset imported."""
    from trainer.data.icbhi import import_icbhi
    from trainer.project import Project

    project = Project.create(tmp_path / "synth.rsc")
    import_icbhi(project, synth_dir)
    yield project
    project.close()


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    """A demo project made once per session; tests work on copies (see demo_copy)."""
    from trainer.data.demo import create_demo_project

    path = tmp_path_factory.mktemp("demo-template") / "demo.rsc"
    create_demo_project(path, recordings=12, seed=3).close()
    return path


@pytest.fixture(scope="session")
def micro_data(tmp_path_factory) -> Path:
    """The small synthetic dataset the training and job tests share (10 recordings, read-only)."""
    from trainer.data.synth import write_synthetic_dataset

    out = tmp_path_factory.mktemp("micro-synth")
    write_synthetic_dataset(out, recordings=10, seed=3, duration=10.0)
    return out


@pytest.fixture(scope="session")
def micro_base(tmp_path_factory, micro_data) -> Path:
    """The shared trained base: micro_data imported with its filterbanks cached, made once per session.

    Tests work on copies (copy_project), so no test trains on another's leftovers.
    """
    from trainer.data.icbhi import import_icbhi
    from trainer.features import load_features
    from trainer.project import Project
    import torch

    from trainer.train import training_cycles

    torch.set_num_threads(1)  # the micro runs compare bit for bit with runs in one-thread worker processes
    path = tmp_path_factory.mktemp("micro-base") / "base.rsc"
    with Project.create(path) as project:
        import_icbhi(project, micro_data)
        train, test = training_cycles(project)
        load_features(project, "cnn", train + test)
    return path


def import_more(project, source: Path, folder: Path, count: int = 2) -> list[int]:
    """Recordings imported while (or between) runs train: quieter copies of synthetic ones, new patients."""
    import soundfile as sf

    from trainer.data.folder import import_folder

    folder.mkdir()
    before = {row["id"] for row in project.cycles()}
    for wav in sorted((source / "ICBHI_final_database").glob("*.wav"))[:count]:
        name = "9" + wav.stem[1:]
        audio, rate = sf.read(wav)
        sf.write(folder / f"{name}.wav", audio * 0.5, rate)
        (folder / f"{name}.txt").write_text(wav.with_suffix(".txt").read_text())
    import_folder(project, folder)
    added = sorted({row["id"] for row in project.cycles()} - before)
    assert added
    return added


@pytest.fixture(scope="module")
def scratch(request) -> Path:
    """A module's scratch folder for thousands of small SQLite commits: on a RAM disk where there is one
    (the results are the same, the hostile-input suites several times faster), else the temp folder."""
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    folder = Path(tempfile.mkdtemp(prefix=f"rsc-{request.module.__name__}-", dir=base))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def write_sqlite(path: Path, *statements: str, wal: bool = False) -> Path:
    """An SQLite file made by running ``statements`` on ``path`` (another program's, or ours edited)."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(path)) as conn:
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    return path


def copy_project(source: Path, target: Path) -> Path:
    """Copy a project file and its artifacts folder to ``target`` (a file path); returns ``target``.

    Audio paths are stored relative to the project file, so the two move together.
    """
    from trainer.project import Project

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    shutil.copytree(Project.artifacts_of(source), Project.artifacts_of(target))
    return target


@pytest.fixture
def demo_copy(demo_template):
    """demo_copy(folder) -> path of a fresh copy of the demo project (file and artifacts) in folder."""
    return lambda folder: copy_project(demo_template, folder / demo_template.name)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_HOME, ignore_errors=True)


# The longest test file, collected first, so that a parallel run starts it first and the other workers'
# many short files fill the time beside it (at the end of the order it would run alone).
LONGEST_FIRST = ("test_methods_learn.py",)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.path.name not in LONGEST_FIRST)
