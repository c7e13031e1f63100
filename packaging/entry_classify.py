"""The classify-only edition's one executable: the Classify window, or ``classify``/``segment`` on the command line.

``rsc-classify``                            opens the Classify window
``rsc-classify classify MODEL.onnx AUDIO…``  the same as ``rsc classify`` (see ``rsc classify --help``)
``rsc-classify segment AUDIO``              the same as ``rsc segment``

The edition is built in an environment without torch, so only the commands that run on onnxruntime and
numpy are offered; the others need the full edition.
"""

from __future__ import annotations

import sys

COMMANDS = ("classify", "segment")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        from trainer.cli import main as cli_main

        return cli_main(argv)
    if argv and argv[0] in ("-h", "--help") and len(argv) == 1:
        print(__doc__.strip())
        return 0
    from rscapp.classify.app import main as app_main

    return app_main(argv)


if __name__ == "__main__":
    sys.exit(main())
