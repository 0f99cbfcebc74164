"""Dead-letter queues: each message's reason and origin, and redrive — all of it
through a message-move task (with its progress), or hand-picked messages."""

from __future__ import annotations

from ..server.authorize import redrive_destinations
from .context import Context, Route
from .format import count, queue_link
from .http import ConsoleError, Response, redirect
from .layout import page
from .markup import Markup, join, render, time_tag
from .messages_view import reason_and_origin
from .queue import NAME, peek_section
from .queueinfo import browser

__all__ = ["ROUTES"]

_FORM_ID = "redrive-form"


def _moves(context: Context, name: str) -> Markup:
    """The latest message-move tasks of the queue, refreshed while one runs."""
    if not context.viewer.can("ListMessageMoveTasks", name):
        return Markup('<p class="empty">Progress needs the ListMessageMoveTasks grant.</p>')
    result = context.service.dispatch(
        "ListMessageMoveTasks", {"SourceArn": context.service.arn(name), "MaxResults": 5}
    )
    tasks = result.get("Results", [])
    if not tasks:
        return Markup('<p class="empty">No redrive has run on this queue.</p>')
    rows = []
    for task in tasks:
        moved, total = (
            task["ApproximateNumberOfMessagesMoved"],
            task["ApproximateNumberOfMessagesToMove"],
        )
        destination = task.get("DestinationArn", "each message's source queue")
        rows.append(
            render(
                '<tr><td>{started}</td><td><span class="status {css}">{status}</span>{failure}</td>'
                '<td><progress max="{max}" value="{moved}" aria-label="moved {moved} of {total}">'
                "</progress> {moved} / {total}</td><td>{destination}</td></tr>",
                started=time_tag(task["StartedTimestamp"] / 1000),
                status=task["Status"],
                css=str(task["Status"]).lower(),
                failure=render(' <span class="error">{f}</span>', f=task["FailureReason"])
                if task.get("FailureReason")
                else "",
                max=max(total, 1),
                total=total,
                moved=moved,
                destination=str(destination).rsplit(":", 1)[-1],
            )
        )
    return render(
        '<div class="scroll"><table class="moves"><caption>Redrives (newest first)</caption>'
        '<thead><tr><th scope="col">Started</th><th scope="col">Status</th>'
        '<th scope="col">Progress</th><th scope="col">Destination</th></tr></thead>'
        "<tbody>{rows}</tbody></table></div>",
        rows=join(rows),
    )


def dlq_page(context: Context, name: str) -> Response:
    context.viewer.require("GetQueueAttributes", name)
    service = context.service
    counts = service.backend.queue_counts(name)
    sources = service.backend.list_dead_letter_source_queues(name)
    source_links = join(
        (render('<a href="{h}">{q}</a>', h=queue_link(q), q=q) for q in sources), ", "
    )
    selectable = browser(service) is not None
    body = render(
        """<h1>Dead-letter queue {name}</h1>
<p>Dead letters of {sources}. <a href="{queue}">Queue page</a></p>
<dl class="counts"><div><dt>Visible</dt><dd>{visible}</dd></div>
<div><dt>In flight</dt><dd>{in_flight}</dd></div></dl>
<section aria-labelledby="redrive-h"><h2 id="redrive-h">Redrive</h2>
<form method="post" action="{action}" id="{form_id}" class="stack">{csrf}
<p>Move messages back to the queue each one came from.</p>
<div class="buttons"><button type="submit" name="mode" value="all">Redrive all</button>
{selected_button}</div></form>
<div id="moves" data-refresh="2" aria-live="polite">{moves}</div>
</section>
<section aria-labelledby="messages"><h2 id="messages">Messages</h2>{messages}</section>""",
        name=name,
        sources=source_links
        if sources
        else Markup("no queue (nothing names it in a redrive policy)"),
        queue=queue_link(name),
        visible=count(counts["ApproximateNumberOfMessages"]),
        in_flight=count(counts["ApproximateNumberOfMessagesNotVisible"]),
        action=f"{queue_link(name, 'dlq')}/redrive",
        form_id=_FORM_ID,
        csrf=context.csrf_field(),
        selected_button=Markup(
            '<button type="submit" name="mode" value="selected">Redrive selected</button>'
        )
        if selectable
        else "",
        moves=_moves(context, name),
        messages=peek_section(context, name, select_form=_FORM_ID),
    )
    return page(context.page, f"Dead letters of {name}", body)


def redrive(context: Context, name: str) -> Response:
    context.viewer.require("StartMessageMoveTask", name)
    mode = context.request.field("mode")
    if mode == "all":
        # Each message goes back to its origin: the key must be allowed to send to every
        # queue the move may write into, not just to start it.
        request = {"SourceArn": context.service.arn(name)}
        context.require_request("StartMessageMoveTask", request)
        context.service.dispatch("StartMessageMoveTask", request)
        return redirect(f"/dlq/{name}", notice="redrive-started")
    if mode != "selected":
        raise ConsoleError(400, "Nothing to do", "Choose Redrive all or Redrive selected.")
    return _redrive_selected(context, name, context.request.fields("message"))


def _redrive_selected(context: Context, name: str, chosen: list[str]) -> Response:
    engine = browser(context.service)
    if engine is None:
        raise ConsoleError(400, "Not available", "This backend cannot move single messages.")
    if not chosen:
        raise ConsoleError(
            400, "No messages selected", "Tick the messages to redrive, then submit."
        )
    if len(chosen) > 1000:
        raise ConsoleError(400, "Too many messages", "Redrive at most 1000 at once, or all.")
    # Each goes back where it came from: the queue that dead-lettered it, or for a copy a
    # worker dead-lettered on purpose, the queue its trainmq.SourceQueue attribute names
    # when that queue really dead-letters into this one (the engine follows either).
    # Moving is sending there: the key must be allowed to.
    destinations = set(redrive_destinations(context.service, name))
    for message in engine.peek_messages(name, limit=len(chosen), message_ids=chosen):
        _, origin = reason_and_origin(message)
        origin_name = origin.rsplit(":", 1)[-1] if origin else None
        if origin_name in destinations:
            context.viewer.require("SendMessage", origin_name)
    outcomes = engine.move_messages(name, chosen, None)
    rows = [
        render(
            "<tr><td><code>{id}</code></td><td>{result}</td></tr>",
            id=o.message_id,
            result=render(
                'moved to <a href="{h}">{q}</a>', h=queue_link(o.destination), q=o.destination
            )
            if o.moved and o.destination
            else render("not moved: {r}", r=o.reason),
        )
        for o in outcomes
    ]
    moved = sum(1 for o in outcomes if o.moved)
    for outcome in outcomes:
        if outcome.moved and outcome.destination:
            context.traffic.record(outcome.destination, "sent", 1)
    body = render(
        """<h1>Redrive from {name}</h1>
<p class="notice" role="status">Moved {moved} of {total} selected messages.</p>
<div class="scroll"><table><thead><tr><th scope="col">Message</th><th scope="col">Result</th></tr>
</thead><tbody>{rows}</tbody></table></div>
<p><a href="{back}">Back to {name}</a></p>""",
        name=name,
        moved=moved,
        total=len(outcomes),
        rows=join(rows),
        back=queue_link(name, "dlq"),
    )
    return page(context.page, f"Redrive from {name}", body)


ROUTES = [
    Route("GET", f"/dlq/{NAME}", dlq_page),
    Route("POST", f"/dlq/{NAME}/redrive", redrive),
]
