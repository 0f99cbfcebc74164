"""One queue: its attributes (editable where SQS allows), a message browser that
only peeks, sending a message, and purging with confirmation."""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..errors import SQSError
from .context import Context, Route
from .format import count, queue_link, seconds
from .http import ConsoleError, Response, redirect
from .layout import page
from .markup import Markup, join, render
from .messages_view import message_article, message_list
from .queueinfo import browser, dead_letter_target

__all__ = ["ROUTES", "peek_section"]

NAME = r"(?P<name>[A-Za-z0-9_.-]{1,80})"
PAGE_SIZE = 20
#: Attributes the form edits (SQS allows setting them on an existing queue).
EDITABLE = {
    "VisibilityTimeout": "Visibility timeout (seconds, 0 to 43200)",
    "MessageRetentionPeriod": "Retention (seconds, 60 to 1209600)",
    "DelaySeconds": "Delay (seconds, 0 to 900)",
    "ReceiveMessageWaitTimeSeconds": "Receive wait time (seconds, 0 to 20)",
}


def _attributes(context: Context, name: str) -> dict[str, str]:
    result = context.service.dispatch(
        "GetQueueAttributes",
        {"QueueUrl": context.service.url(name), "AttributeNames": ["All"]},
    )
    return dict(result.get("Attributes", {}))


def _counts(attributes: Mapping[str, str]) -> Markup:
    def number(key: str) -> str:
        return count(int(attributes[key])) if key in attributes else "—"

    return render(
        '<section id="summary" data-refresh="5" aria-label="Counts"><dl class="counts">'
        "<div><dt>Visible</dt><dd>{visible}</dd></div>"
        "<div><dt>In flight</dt><dd>{in_flight}</dd></div>"
        "<div><dt>Delayed</dt><dd>{delayed}</dd></div></dl></section>",
        visible=number("ApproximateNumberOfMessages"),
        in_flight=number("ApproximateNumberOfMessagesNotVisible"),
        delayed=number("ApproximateNumberOfMessagesDelayed"),
    )


def _attribute_table(attributes: Mapping[str, str]) -> Markup:
    rows = []
    for key in sorted(attributes):
        value = attributes[key]
        shown = seconds(value) if key in EDITABLE else value
        rows.append(
            render('<tr><th scope="row">{k}</th><td><code>{v}</code></td></tr>', k=key, v=shown)
        )
    return render(
        '<details><summary>All attributes</summary><div class="scroll">'
        '<table class="attributes">{rows}</table></div></details>',
        rows=join(rows),
    )


def _attribute_form(
    context: Context, name: str, attributes: Mapping[str, str], values: Mapping[str, str]
) -> Markup:
    fields = []
    for key, label in EDITABLE.items():
        fields.append(
            render(
                '<label for="a-{key}">{label}</label>'
                '<input id="a-{key}" name="{key}" inputmode="numeric" value="{value}">',
                key=key,
                label=label,
                value=values.get(key, attributes.get(key, "")),
            )
        )
    current = dead_letter_target(context.service.backend.get_queue(name))
    others = [
        q for q in context.viewer.visible(context.service.backend.list_queues(None)) if q != name
    ]
    chosen = values.get("dlq", current[0] if current else "")
    options = [render('<option value="">(none)</option>')]
    options += [
        render(
            '<option value="{q}"{sel}>{q}</option>',
            q=q,
            sel=Markup(" selected") if q == chosen else "",
        )
        for q in others
    ]
    max_receives = values.get("max_receives", str(current[1]) if current else "5")
    return render(
        """<form method="post" action="{action}" class="stack">{csrf}
<fieldset><legend>Timing</legend>{fields}</fieldset>
<fieldset><legend>Redrive policy</legend>
<label for="a-dlq">Dead-letter queue</label><select id="a-dlq" name="dlq">{options}</select>
<label for="a-max">Maximum receives before dead-lettering</label>
<input id="a-max" name="max_receives" inputmode="numeric" value="{max_receives}">
</fieldset>
<button type="submit">Save attributes</button></form>""",
        action=f"{queue_link(name)}/attributes",
        csrf=context.csrf_field(),
        fields=join(fields),
        options=join(options),
        max_receives=max_receives,
    )


def _send_form(context: Context, name: str, fifo: bool, values: Mapping[str, str]) -> Markup:
    fifo_fields = Markup("")
    if fifo:
        fifo_fields = render(
            '<label for="s-group">Message group id</label>'
            '<input id="s-group" name="group_id" value="{group}" required>'
            '<label for="s-dedup">Deduplication id (optional)</label>'
            '<input id="s-dedup" name="deduplication_id" value="{dedup}">',
            group=values.get("group_id", ""),
            dedup=values.get("deduplication_id", ""),
        )
    return render(
        """<form method="post" action="{action}" class="stack" id="send-form">{csrf}
<label for="s-body">Body</label>
<textarea id="s-body" name="body" rows="6" required>{body}</textarea>
<label for="s-attrs">Attributes (one <code>name=value</code> per line, sent as String)</label>
<textarea id="s-attrs" name="attributes" rows="2">{attrs}</textarea>
<label for="s-delay">Delay (seconds)</label>
<input id="s-delay" name="delay" inputmode="numeric" value="{delay}">
{fifo}
<button type="submit">Send message</button></form>""",
        action=f"{queue_link(name)}/send",
        csrf=context.csrf_field(),
        body=values.get("body", ""),
        attrs=values.get("attributes", ""),
        delay=values.get("delay", ""),
        fifo=fifo_fields,
    )


def peek_section(context: Context, name: str, *, select_form: str | None = None) -> Markup:
    """The message browser: messages in send order, read without receiving them."""
    engine = browser(context.service)
    if engine is None:
        return Markup(
            '<p class="empty">This backend cannot show messages without receiving them '
            "(peeking needs the embedded engine), so the console does not browse it.</p>"
        )
    if not context.viewer.can("ReceiveMessage", name):
        return Markup('<p class="empty">Browsing messages needs the ReceiveMessage grant.</p>')
    after_text = context.request.arg("after", "0")
    after = int(after_text) if after_text.isdigit() else 0
    messages = engine.peek_messages(name, limit=PAGE_SIZE + 1, after=after)
    more = len(messages) > PAGE_SIZE
    messages = messages[:PAGE_SIZE]
    links = []
    if after:
        links.append(render('<a href="{href}#messages">First page</a>', href=_self(context, name)))
    if more:
        links.append(
            render(
                '<a href="{href}?after={after}#messages">Next {n} messages</a>',
                href=_self(context, name),
                after=messages[-1].position,
                n=PAGE_SIZE,
            )
        )
    return render(
        '<p class="hint">Peeking changes neither visibility nor receive counts.</p>'
        '{messages}<nav class="pages" aria-label="Message pages">{links}</nav>',
        messages=message_list(messages, name, select_form=select_form),
        links=join(links, " · "),
    )


def _self(context: Context, name: str) -> str:
    section = "dlq" if context.request.path.startswith("/dlq/") else "queues"
    return queue_link(name, section)


def queue_page(
    context: Context,
    name: str,
    *,
    error: str = "",
    values: Mapping[str, str] | None = None,
    form: str = "",
    status: int = 200,
) -> Response:
    context.viewer.require("GetQueueAttributes", name)
    attributes = _attributes(context, name)
    record = context.service.backend.get_queue(name)
    fifo = record.attributes.get("FifoQueue") == "true"
    sources = context.service.backend.list_dead_letter_source_queues(name)
    target = dead_letter_target(record)
    links = []
    if sources:
        links.append(
            render('<a href="{h}">Dead-letter view and redrive</a>', h=queue_link(name, "dlq"))
        )
    if target:
        links.append(
            render(
                'Dead letters go to <a href="{h}">{q}</a>',
                h=queue_link(target[0], "dlq"),
                q=target[0],
            )
        )
    problem = render('<p class="error" role="alert">{e}</p>', e=error) if error else Markup("")
    given = values or {}
    body = render(
        """<h1>Queue {name}{fifo}</h1>
<p class="links">{links}</p>
{counts}
<div class="columns">
<section aria-labelledby="attributes-h"><h2 id="attributes-h">Attributes</h2>
{attr_error}{attribute_form}{attribute_table}</section>
<section aria-labelledby="send-h"><h2 id="send-h">Send a message</h2>
{send_error}{send_form}</section>
</div>
<section aria-labelledby="messages"><h2 id="messages">Messages</h2>{peek}</section>
<section aria-labelledby="purge-h"><h2 id="purge-h">Purge</h2>
<p><a class="danger" href="{purge}">Purge this queue…</a> (asks for confirmation)</p></section>""",
        name=name,
        fifo=Markup(' <span class="badge">FIFO</span>') if fifo else "",
        links=join(links, " · "),
        counts=_counts(attributes),
        attr_error=problem if form == "attributes" else "",
        attribute_form=_attribute_form(
            context, name, attributes, given if form == "attributes" else {}
        ),
        attribute_table=_attribute_table(attributes),
        send_error=problem if form == "send" else "",
        send_form=_send_form(context, name, fifo, given if form == "send" else {}),
        peek=peek_section(context, name),
        purge=f"{queue_link(name)}/purge",
    )
    return page(context.page, f"Queue {name}", body, status=status)


def message_page(context: Context, name: str, message_id: str) -> Response:
    context.viewer.require("ReceiveMessage", name)
    engine = browser(context.service)
    found = engine.peek_messages(name, limit=1, message_ids=[message_id]) if engine else []
    if not found:
        raise ConsoleError(404, "No such message", f"Message {message_id} is not in {name}.")
    body = render(
        '<h1>Message in <a href="{href}">{name}</a></h1>{article}',
        href=queue_link(name),
        name=name,
        article=message_article(found[0], name, full=True),
    )
    return page(context.page, f"Message {message_id}", body)


def _form_values(context: Context) -> dict[str, str]:
    return {key: values[0] for key, values in context.request.form.items() if values}


def send(context: Context, name: str) -> Response:
    context.viewer.require("SendMessage", name)
    values = _form_values(context)
    params: dict[str, object] = {
        "QueueUrl": context.service.url(name),
        "MessageBody": values.get("body", ""),
    }
    try:
        if values.get("delay", "").strip():
            params["DelaySeconds"] = values["delay"].strip()
        attributes = {}
        for line in values.get("attributes", "").splitlines():
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise ConsoleError(
                    400, "Bad attribute", f"Write attributes as name=value, not {line!r}."
                )
            attributes[key.strip()] = {"DataType": "String", "StringValue": value.strip()}
        if attributes:
            params["MessageAttributes"] = attributes
        for field, parameter in (
            ("group_id", "MessageGroupId"),
            ("deduplication_id", "MessageDeduplicationId"),
        ):
            if values.get(field, "").strip():
                params[parameter] = values[field].strip()
        result = context.service.dispatch("SendMessage", params)
    except (SQSError, ConsoleError) as error:
        text = error.message if isinstance(error, SQSError) else error.detail
        return queue_page(
            context, name, error=f"Not sent: {text}", values=values, form="send", status=400
        )
    context.traffic.record(name, "sent", 1)
    return redirect(f"/queues/{name}", notice="sent", message=str(result["MessageId"]))


def set_attributes(context: Context, name: str) -> Response:
    context.viewer.require("SetQueueAttributes", name)
    values = _form_values(context)
    changes: dict[str, str] = {
        key: values[key].strip() for key in EDITABLE if values.get(key, "").strip()
    }
    try:
        dlq = values.get("dlq", "").strip()
        if dlq:
            max_receives = values.get("max_receives", "").strip()
            if not max_receives.isdigit():
                raise ConsoleError(
                    400, "Bad redrive policy", "Maximum receives must be a whole number."
                )
            changes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": context.service.arn(dlq),
                    "maxReceiveCount": int(max_receives),
                }
            )
        elif dead_letter_target(context.service.backend.get_queue(name)) is not None:
            changes["RedrivePolicy"] = ""
        request = {"QueueUrl": context.service.url(name), "Attributes": changes}
        context.require_request("SetQueueAttributes", request)  # dlq=: SendMessage there
        context.service.dispatch("SetQueueAttributes", request)
    except (SQSError, ConsoleError) as error:
        if isinstance(error, ConsoleError) and error.status == 403:
            raise
        text = error.message if isinstance(error, SQSError) else error.detail
        return queue_page(
            context, name, error=f"Not saved: {text}", values=values, form="attributes", status=400
        )
    return redirect(f"/queues/{name}", notice="attributes")


def purge_page(context: Context, name: str) -> Response:
    context.viewer.require("GetQueueAttributes", name)
    counts = context.service.backend.queue_counts(name)
    total = sum(counts.values())
    body = render(
        """<h1>Purge {name}?</h1>
<p>Purging deletes every message in <strong>{name}</strong> — {total} now, visible,
in flight and delayed alike. It cannot be undone.</p>
<form method="post" action="{action}" class="stack">{csrf}
<input type="hidden" name="confirm" value="{name}">
<button type="submit" class="danger">Purge {name}</button>
<a href="{back}">Cancel</a></form>""",
        name=name,
        total=count(total),
        action=f"{queue_link(name)}/purge",
        back=queue_link(name),
        csrf=context.csrf_field(),
    )
    return page(context.page, f"Purge {name}", body)


def purge(context: Context, name: str) -> Response:
    context.viewer.require("PurgeQueue", name)
    if context.request.field("confirm") != name:
        return redirect(f"/queues/{name}/purge")
    context.service.dispatch("PurgeQueue", {"QueueUrl": context.service.url(name)})
    return redirect(f"/queues/{name}", notice="purged")


ROUTES = [
    Route("GET", f"/queues/{NAME}", queue_page),
    Route("GET", f"/queues/{NAME}/messages/(?P<message_id>[A-Za-z0-9-]{{1,100}})", message_page),
    Route("POST", f"/queues/{NAME}/send", send),
    Route("POST", f"/queues/{NAME}/attributes", set_attributes),
    Route("GET", f"/queues/{NAME}/purge", purge_page),
    Route("POST", f"/queues/{NAME}/purge", purge),
]
