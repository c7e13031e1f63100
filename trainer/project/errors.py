"""What the project refuses, in two kinds: an edit it will not make, and a file it cannot use."""

from __future__ import annotations


class ProjectError(Exception):
    """A project file that cannot be opened, or an edit the project refuses."""


class ProjectFileError(ProjectError):
    """The file itself cannot be used: not a project, damaged, read-only, locked, or its disk is full.

    Raised with nothing in the file changed. An importer that reports a bad row and goes on must let this
    one through: the next row would meet the same file.
    """
