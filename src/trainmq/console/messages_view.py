"""Peeked messages as HTML: body (pretty JSON when it is JSON), attributes, history."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from ..queue.model import DEAD_LETTER_REASON, SOURCE_QUEUE, PeekedMessage
from .format import queue_link
from .markup import Markup, join, render, time_tag

__all__ = ["DEAD_LETTER_REASON", "SOURCE_QUEUE", "message_list", "pretty_body"]

#: Message attributes a worker sets when it dead-letters a message on purpose.
#: How much of a body a list shows; the message's own page shows all of it.
PREVIEW_CHARS = 4000


def pretty_body(body: str) -> tuple[str, bool]:
    """``(text, is_json)``: JSON objects and arrays indented, anything else as it is."""
    stripped = body.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.dumps(json.loads(stripped), indent=2, ensure_ascii=False), True
        except ValueError:
            pass
    return body, False


def _attribute_value(message: PeekedMessage, name: str) -> str | None:
    value = message.message_attributes.get(name)
    return None if value is None else value.string_value


def reason_and_origin(message: PeekedMessage) -> tuple[str | None, str | None]:
    """Why the message was dead-lettered and from which queue (name), where known."""
    reason = _attribute_value(message, DEAD_LETTER_REASON)
    origin = message.dead_letter_source or _attribute_value(message, SOURCE_QUEUE)
    if reason is None and message.dead_letter_source is not None:
        reason = "received more than maxReceiveCount times"
    return reason, None if origin is None else origin.rsplit(":", 1)[-1]


def _attributes(message: PeekedMessage) -> Markup:
    if not message.message_attributes:
        return Markup("")
    rows = []
    for name, value in sorted(message.message_attributes.items()):
        shown = (
            "base64:" + base64.b64encode(value.binary_value).decode()
            if value.binary_value is not None
            else value.string_value or ""
        )
        rows.append(
            render(
                '<tr><th scope="row">{name}</th><td>{type}</td><td><code>{value}</code></td></tr>',
                name=name,
                type=value.data_type,
                value=shown,
            )
        )
    return render(
        '<table class="attributes"><caption>Message attributes</caption>{rows}</table>',
        rows=join(rows),
    )


def message_article(
    message: PeekedMessage,
    queue: str,
    *,
    full: bool = False,
    select_form: str | None = None,
) -> Markup:
    text, is_json = pretty_body(message.body)
    cut = not full and len(text) > PREVIEW_CHARS
    shown = text[:PREVIEW_CHARS] if cut else text
    more = (
        render(
            '<p class="cut">Showing {n} of {total} characters. '
            '<a href="{href}">Whole message</a></p>',
            n=f"{PREVIEW_CHARS:,}",
            total=f"{len(text):,}",
            href=f"{queue_link(queue)}/messages/{quote(message.message_id, safe='')}",
        )
        if cut
        else Markup("")
    )
    reason, origin = reason_and_origin(message)
    dead = Markup("")
    if reason or origin:
        dead = render(
            '<p class="dead">Dead-letter reason: <strong class="reason">{reason}</strong>'
            "{origin}</p>",
            origin=render(" (from {o})", o=origin) if origin else "",
            reason=reason or "none recorded",
        )
    select = Markup("")
    if select_form is not None:
        select = render(
            '<input type="checkbox" class="pick" name="message" value="{id}" form="{form}" '
            'id="pick-{id}" aria-label="Select message {id}">',
            id=message.message_id,
            form=select_form,
        )
    return render(
        """<article class="message" id="m-{id}">
<header>{select}<a class="mid" href="{href}">{id}</a>
<span class="state {state_class}">{state}</span>
<span>received {count} times</span> <span>sent {sent}</span>{first}{group}</header>
{dead}<pre class="body{json}" tabindex="0" aria-label="Message body">{body}</pre>{more}{attributes}
</article>""",
        id=message.message_id,
        select=select,
        href=f"{queue_link(queue)}/messages/{quote(message.message_id, safe='')}",
        state=message.state,
        state_class=message.state.replace(" ", "-"),
        count=message.receive_count,
        sent=time_tag(message.sent_at / 1000),
        first=render(
            " <span>first received {t}</span>", t=time_tag(message.first_received_at / 1000)
        )
        if message.first_received_at
        else "",
        group=render(" <span>group {g}</span>", g=message.group_id) if message.group_id else "",
        dead=dead,
        json=" json" if is_json else "",
        body=shown,
        more=more,
        attributes=_attributes(message),
    )


def message_list(
    messages: list[PeekedMessage], queue: str, *, select_form: str | None = None
) -> Markup:
    if not messages:
        return Markup('<p class="empty">No messages.</p>')
    return join(message_article(m, queue, select_form=select_form) for m in messages)
