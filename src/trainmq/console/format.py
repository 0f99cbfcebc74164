"""Small text formats shared by the pages."""

from __future__ import annotations

from urllib.parse import quote

from .http import ROOT

__all__ = ["age", "count", "number", "queue_link", "seconds"]


def age(seconds: float | None) -> str:
    """``3 h 5 m``, ``4 m 10 s``, ``12 s``; ``—`` for nothing."""
    if seconds is None:
        return "—"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} m"
    if minutes:
        return f"{minutes} m {secs} s"
    return f"{secs} s"


def seconds(value: str | int) -> str:
    """An attribute in seconds, with a readable form beside it when it is long."""
    try:
        whole = int(value)
    except ValueError:
        return str(value)
    return f"{whole} s" if whole < 60 else f"{whole} s ({age(whole)})"


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def queue_link(name: str, section: str = "queues") -> str:
    return f"{ROOT}/{section}/{quote(name, safe='')}"
