"""The full edition's one executable: the app, or any ``rsc`` command.

``rsc-studio [PROJECT] [--demo]``   opens the app, as ``rsc-studio`` from source does
``rsc-studio COMMAND ...``          runs ``rsc COMMAND ...`` (train, distill, export, classify, ...)
"""

from __future__ import annotations

import sys


def _commands() -> set[str]:
    from trainer.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # argparse keeps sub-commands here
    return set(sub.choices)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] in _commands():
        from trainer.cli import main as cli_main

        return cli_main(argv)
    from rscapp.main import main as app_main

    return app_main(argv)


if __name__ == "__main__":
    sys.exit(main())
