"""The queues overview: depth, in flight, delayed, oldest age, DLQ, rates."""

from __future__ import annotations

from .context import Context, Route
from .format import age, count, queue_link
from .http import Response
from .layout import page
from .markup import Markup, join, render
from .queueinfo import QueueInfo, queue_infos
from .svg import sparkline

__all__ = ["ROUTES"]

_TABLE = """<h1>Queues</h1>
<section id="queues" data-refresh="5" aria-live="polite">
<div class="scroll"><table class="queues">
<caption>{caption}</caption>
<thead><tr><th scope="col">Queue</th><th scope="col" class="num">Visible</th>
<th scope="col" class="num">In flight</th><th scope="col" class="num">Delayed</th>
<th scope="col" class="num">Oldest</th><th scope="col">Dead-letter queue</th>
<th scope="col">Sent · received · deleted per second</th></tr></thead>
<tbody>{rows}</tbody>
</table></div>
<p class="legend"><span class="key spark-sent">sent</span>
<span class="key spark-received">received</span>
<span class="key spark-deleted">deleted</span>
· rates of the last {minutes} minutes through this server · refreshed every 5 s</p>
</section>"""

_ROW = """<tr><th scope="row"><a href="{href}">{name}</a>{badges}</th>
<td class="num">{visible}</td><td class="num">{in_flight}</td><td class="num">{delayed}</td>
<td class="num">{oldest}</td><td>{dlq}</td><td>{spark}</td></tr>"""


def _badges(info: QueueInfo) -> Markup:
    badges = []
    if info.fifo:
        badges.append(Markup(' <span class="badge">FIFO</span>'))
    if info.is_dead_letter_queue:
        badges.append(
            render(
                ' <a class="badge dlq" href="{href}" title="dead-letter queue of {sources}">'
                "DLQ</a>",
                href=queue_link(info.name, "dlq"),
                sources=", ".join(info.sources),
            )
        )
    return join(badges)


def _dead_letter_cell(info: QueueInfo) -> Markup:
    if info.dead_letter_queue is None:
        return Markup("—")
    return render(
        '<a href="{href}">{name}</a> <span class="depth{alert}">{depth}</span>',
        href=queue_link(info.dead_letter_queue, "dlq"),
        name=info.dead_letter_queue,
        depth=count(info.dead_letter_depth),
        alert=" alert" if info.dead_letter_depth else "",
    )


def overview_page(context: Context) -> Response:
    infos = queue_infos(context.service, context.viewer)
    traffic = context.traffic
    rows = [
        render(
            _ROW,
            href=queue_link(info.name),
            name=info.name,
            badges=_badges(info),
            visible=count(info.count("ApproximateNumberOfMessages")),
            in_flight=count(info.count("ApproximateNumberOfMessagesNotVisible")),
            delayed=count(info.count("ApproximateNumberOfMessagesDelayed")),
            oldest=age(info.oldest_age),
            dlq=_dead_letter_cell(info),
            spark=sparkline(traffic.rates(info.name), traffic.bucket_seconds),
        )
        for info in infos
    ]
    if not rows:
        rows = [Markup('<tr><td colspan="7">No queues (that this key may list).</td></tr>')]
    minutes = traffic.buckets * traffic.bucket_seconds // 60
    body = render(
        _TABLE,
        caption=f"{len(infos)} queue{'s' if len(infos) != 1 else ''}",
        rows=join(rows),
        minutes=minutes,
    )
    return page(context.page, "Queues", body)


ROUTES = [Route("GET", "/", overview_page), Route("GET", "/queues", overview_page)]
