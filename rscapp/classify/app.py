"""The classify-only edition: a small window with the Classify view and exported (ONNX) models only.

``rsc-classify [MODEL.onnx] [AUDIO ...]`` opens the window with the model and recordings given.
``--quit-after-start`` prints the seconds from the start of this process to a shown window, then
exits (the packaging measures the edition's start with it). Nothing here imports torch: the edition
is built without it, and a test runs this module with torch blocked.
"""

from __future__ import annotations

import argparse
import sys
import time



def process_age() -> float:
    """Seconds since this process started (Linux: from /proc; elsewhere since this module was imported)."""
    try:
        with open("/proc/self/stat") as handle:
            ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        import os

        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - _IMPORTED


_IMPORTED = time.perf_counter()


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog="rsc-classify", description="Classify breathing cycles with an exported model.")
    parser.add_argument("model", nargs="?", help="an exported model (.onnx with its .card.json beside it)")
    parser.add_argument("audio", nargs="*", help="recordings to classify (.wav, .flac)")
    parser.add_argument("--classify", action="store_true", help="classify the recordings given at once")
    parser.add_argument("--quit-after-start", action="store_true",
                        help="print the start time in seconds once the window is shown, then exit")
    return parser.parse_args(argv)


def build_window(model_path=None, audio=()):
    """The edition's main window (a QApplication must exist)."""
    from PySide6.QtWidgets import QMainWindow

    from ..style import app_icon
    from .view import ClassifyView

    window = QMainWindow()
    window.setWindowTitle("RSC Classify")
    window.setWindowIcon(app_icon())
    window.view = ClassifyView(None, allow_runs=False)
    window.setCentralWidget(window.view)
    window.view.statusMessage.connect(lambda text: window.statusBar().showMessage(text, 8000))
    window.resize(1280, 800)
    if model_path:
        window.view.chooser.load_onnx(model_path)
    if audio:
        window.view.add_files(audio)
    return window


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from ..style import apply_style

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("RSC Classify")
    apply_style(app)
    window = build_window(args.model, args.audio)
    window.show()
    if args.quit_after_start:
        app.processEvents()
        print(f"{process_age():.3f}", flush=True)
        window.close()
        window.deleteLater()  # before the application goes: Qt objects outliving it crash the exit
        app.processEvents()
        return 0
    if args.classify:
        QTimer.singleShot(0, window.view.classify)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
