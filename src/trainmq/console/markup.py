"""HTML by escaping: every value placed in a page is escaped unless it is ``Markup``.

Pages are plain Python string templates.  ``render(template, **values)``
escapes each value (``html.escape`` with quotes) before it is placed, so a
message body holding ``<script>`` shows as text; only fragments this package
built itself (``Markup``) pass through unchanged.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable

__all__ = ["Markup", "esc", "join", "render", "time_tag"]


class Markup(str):
    """Text that is already HTML (built by ``render``; never from outside input)."""

    __slots__ = ()


def esc(value: object) -> Markup:
    """``value`` as HTML text: Markup unchanged, anything else escaped."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def render(template: str, /, **values: object) -> Markup:
    """Fill ``{name}`` placeholders of ``template`` with escaped ``values``."""
    return Markup(template.format(**{name: esc(value) for name, value in values.items()}))


def join(parts: Iterable[Markup], separator: str = "") -> Markup:
    return Markup(separator.join(esc(part) for part in parts))


def time_tag(epoch_seconds: float | None) -> Markup:
    """A ``<time>`` in UTC; the page's script shows it in the viewer's local time, with
    UTC kept as the hover title (without script it reads in UTC)."""
    if epoch_seconds is None:
        return Markup("—")
    when = dt.datetime.fromtimestamp(epoch_seconds, dt.UTC)
    iso = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    text = when.strftime("%Y-%m-%d %H:%M:%S UTC")
    return render('<time datetime="{iso}" title="UTC {text}">{text}</time>', iso=iso, text=text)
