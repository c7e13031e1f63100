"""The Library area: recordings and cycles tables with filters, counts, and the audio files' checks."""

from .view import LibraryView

__all__ = ["LibraryView"]
