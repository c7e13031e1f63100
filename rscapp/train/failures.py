"""A failed run's stored error (``ExceptionType: message`` and a traceback) as one line a user can act on."""

from __future__ import annotations

import re

# (pattern in the error text, what it means and what to do). First match wins; the run's own message
# follows, as it names the file or setting at fault.
KNOWN_FAILURES: tuple[tuple[str, str], ...] = (
    (r"CUDA out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED",
     "Out of GPU memory: lower the batch size or pick a smaller model"),
    (r"checkpoint does not fit|size mismatch|Missing key\(s\)|Unexpected key\(s\)",
     "Pretrained weights do not match the architecture"),
    (r"no such file|No such file or directory|FileNotFoundError", "Missing file"),
    (r"teacher run .*(does not exist|not done)|no stored logits", "The teachers cannot be used"),
    (r"no training cycles|no test cycles|no cycles", "No cycles to train on: import recordings with labels first"),
    (r"has no CUDA device|no CUDA GPUs|CUDA driver", "No GPU on this machine: choose the CPU device"),
    (r"cycles changed|data changed|fingerprint", "The project's cycles changed since the run started"),
)
_TYPE_PREFIX = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\s*:\s*")


def error_message(error: str | None) -> str:
    """The first line of a stored error, without the exception's type name."""
    first = (error or "").strip().splitlines()[0] if (error or "").strip() else ""
    return _TYPE_PREFIX.sub("", first).strip()


def failure_line(error: str | None) -> str:
    """One line for a failed run: what kind of failure, then the run's own message."""
    if not (error or "").strip():
        return "Failed (no error was recorded)"
    message = error_message(error)
    for pattern, meaning in KNOWN_FAILURES:
        if re.search(pattern, error, flags=re.IGNORECASE):
            if meaning == "Missing file" and re.search(r"pretrain|checkpoint|\.pth|safetensors|weights", error,
                                                       flags=re.IGNORECASE):
                meaning = "Pretrained weights not found"
            return f"{meaning}. {message}" if message else meaning
    return message or "Failed"
