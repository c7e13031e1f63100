"""The `rsc` command line. Each command group lives in its own module with a `register(subparsers)`."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sqlite3
import sys
from pathlib import Path

from .. import __version__
from ..project import ProjectError, busy_timeout_s, file_fault

# Modules that add sub-commands; each has register(subparsers) and sets `func` on its parsers.
COMMAND_MODULES = ("data", "features", "models", "train", "analysis", "infer", "collab")


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rsc", description="RSC Studio: respiratory sound classification research")
    parser.add_argument("--version", action="version", version=f"rsc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except (CommandError, ProjectError) as exc:
        return _fail(args, exc)
    except sqlite3.Error as exc:
        # Raised outside a transaction (a read of a damaged page, say); a project's transactions map their own.
        project = getattr(args, "project", None)
        fault = file_fault(exc, Path(os.path.realpath(project)), _busy_timeout()) if project else None
        if fault is None:
            raise
        return _fail(args, fault)
    except BrokenPipeError:
        # Whoever read the output left (`rsc stats | head`): stop quietly, as other tools do.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        if exc.filename is None:  # not about a file the user named: a bug, keep its traceback
            raise
        return _fail(args, f"{exc.filename}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        print(f"rsc {args.command}: interrupted", file=sys.stderr)
        return 130


def _fail(args, message) -> int:
    """A failure as one line on stderr, exit status 2."""
    print(f"rsc {args.command}: {message}", file=sys.stderr)
    return 2


def _busy_timeout() -> float | None:
    try:
        return busy_timeout_s()
    except ProjectError:
        return None


if __name__ == "__main__":
    sys.exit(main())
