"""Stopping work on purpose: what a progress callback raises when its user asked to cancel.

Work that records its outcome (an import's row in the project) tells a cancel from a failure by this
class, so a cancelled import never reads as failed, nor a crash as cancelled.
"""


class Cancelled(Exception):
    """Raised inside long work (usually by its progress callback) once the user asked to stop it."""


CANCELS = (Cancelled, KeyboardInterrupt)
