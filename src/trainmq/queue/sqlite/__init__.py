"""The embedded SQLite engine (the default backend)."""

from .engine import SqliteBackend

__all__ = ["SqliteBackend"]
