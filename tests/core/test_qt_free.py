"""trainer/ must never import Qt: it runs on clusters and in worker processes without a display."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import trainer

REPO = Path(__file__).resolve().parents[2]


def test_trainer_imports_without_qt():
    # __main__ modules run a program when imported; what they import is imported by their package anyway.
    modules = sorted(m.name for m in pkgutil.walk_packages(trainer.__path__, "trainer.") if not m.name.endswith("__main__"))
    assert "trainer.project" in modules and "trainer.cli" in modules
    # A finder that refuses Qt makes any import of it, however indirect, fail loudly.
    script = (
        "import importlib, sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'pyqtgraph', 'qtpy', 'shiboken6'):\n"
        "            raise ImportError('trainer imported ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('ok', len(sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")
