"""The SQL scripts an engine package ships: its migrations and its current schema.

Each engine keeps its own SQL in its package (``migrations/NNNN_*.sql`` and
``schema.sql``); finding and ordering those files is the same for every engine.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["current_schema", "migrations"]


def migrations(package: str) -> list[tuple[int, str]]:
    """(target version, SQL) for every migration of ``package``, in order."""
    folder = resources.files(package).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text("utf-8")))
    return sorted(found)


def current_schema(package: str) -> str:
    """The whole schema of ``package`` at its latest version, as one script."""
    return resources.files(package).joinpath("schema.sql").read_text("utf-8")
