"""Which process owns a piece of work, and whether it is still alive."""

from __future__ import annotations

import os
import socket


def host() -> str:
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (True where it cannot be told)."""
    if os.name != "posix":
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def owner_alive(pid: int | None, owner_host: str | None) -> bool:
    """Whether the process recorded as ``pid`` on ``owner_host`` still runs.

    A process on another machine cannot be checked from here, so it is taken as alive.
    """
    if not pid:
        return False
    if owner_host and owner_host != host():
        return True
    return int(pid) == os.getpid() or pid_alive(int(pid))
