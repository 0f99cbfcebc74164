"""Training runs: the list, and a run's page with its live loss curve, attempts,
checkpoints and evaluation."""

from __future__ import annotations

import json

from ..store import BlobStore
from ..training.runs import RunRegistry
from .context import Context, Route
from .format import number
from .http import ROOT, ConsoleError, Response
from .layout import page
from .markup import Markup, join, render, time_tag
from .runinfo import URI_PATTERN, RunView, find_run, run_view
from .security import VIEW_RUNS
from .store_view import report_json, store_label, store_link
from .svg import loss_chart

__all__ = ["ROUTES"]

_LIST = """<h1>Training runs</h1>
<section id="runs" data-refresh="5" aria-live="polite">
<div class="scroll"><table class="runs"><caption>{caption}</caption>
<thead><tr><th scope="col">Run</th><th scope="col">Status</th><th scope="col">Dataset</th>
<th scope="col" class="num">Step</th><th scope="col" class="num">Train loss</th>
<th scope="col" class="num">Val loss</th><th scope="col">Checkpoints</th>
<th scope="col" class="num">Attempts</th><th scope="col">Started</th></tr></thead>
<tbody>{rows}</tbody></table></div></section>"""


def _registry(context: Context) -> RunRegistry:
    context.viewer.require(VIEW_RUNS)
    registry = context.registry
    if registry is None:
        raise ConsoleError(404, "No store", "This server was started without a store.")
    return registry


def _run_href(view: RunView) -> str:
    return f"{ROOT}/runs/{view.key_hash}"


def _step(view: RunView) -> str:
    return f"{view.step:,}" + (f" / {view.total_steps:,}" if view.total_steps else "")


def _status(view: RunView) -> Markup:
    return render('<span class="status {s}">{s}</span>', s=view.status)


def _checkpoint_cell(view: RunView) -> Markup:
    if not view.checkpoints:
        return Markup("—")
    newest = view.checkpoints[-1]
    return render(
        '{n} · <a href="{href}">newest (step {step})</a>',
        n=len(view.checkpoints),
        href=store_link(newest.checkpoint_uri or ""),
        step=newest.step,
    )


def runs_page(context: Context) -> Response:
    registry = _registry(context)
    now = context.clock.now()
    views = [run_view(registry, record, now) for record in reversed(registry.list_runs())]
    rows = [
        render(
            '<tr><th scope="row"><a href="{href}">{run}</a></th><td>{status}</td>'
            '<td><code title="{dataset}">{short}</code></td><td class="num">{step}</td>'
            '<td class="num">{train}</td><td class="num">{val}</td><td>{checkpoints}</td>'
            '<td class="num">{attempts}{resumes}</td><td>{started}</td></tr>',
            href=_run_href(view),
            run=view.record.run_id,
            status=_status(view),
            dataset=view.dataset,
            short=view.dataset[:12] or "—",
            step=_step(view),
            train=number(view.train_loss),
            val=number(view.val_loss),
            checkpoints=_checkpoint_cell(view),
            attempts=len(view.attempts),
            resumes=f" ({len(view.resumes)} resumed)" if view.resumes else "",
            started=time_tag(view.record.created_at),
        )
        for view in views
    ]
    if not rows:
        address = context.store.address if context.store is not None else "this store"
        rows = [
            render(
                '<tr><td colspan="9">No training runs in the store <code>{store}</code> yet '
                "(<code>trainmq serve --store</code> chooses the store).</td></tr>",
                store=address,
            )
        ]
    caption = f"{len(views)} run{'s' if len(views) != 1 else ''}, newest first"
    return page(context.page, "Training runs", render(_LIST, caption=caption, rows=join(rows)))


def _timeline(view: RunView) -> Markup:
    items = []
    for attempt in view.attempts:
        how = (
            render("resumed from step {s}", s=attempt.resumed_from_step)
            if attempt.resumed_from_step is not None
            else Markup("started from scratch")
        )
        ended = {
            "completed": Markup("completed"),
            "failed": Markup("failed"),
            "training": render("training (alive {t})", t=time_tag(attempt.alive_at)),
            "stopped": render(
                "stopped: no heartbeat since {t} (killed or lost; the next delivery resumes)",
                t=time_tag(attempt.alive_at),
            ),
        }[attempt.ended]
        items.append(
            render(
                '<li class="attempt {css}"><strong>Attempt {n}</strong> on <code>{worker}</code>, '
                "{start}: {how}; {ended}{steps}</li>",
                css=attempt.ended,
                n=attempt.number,
                worker=attempt.worker or "?",
                start=time_tag(attempt.started_at),
                how=how,
                ended=ended,
                steps=f" — reached step {attempt.last_step:,}" if attempt.last_step else "",
            )
        )
    if not items:
        return Markup('<p class="empty">No attempt yet: the request waits in its queue.</p>')
    return render('<ol class="timeline">{items}</ol>', items=join(items))


def _checkpoints(view: RunView, store: BlobStore | None) -> Markup:
    if not view.checkpoints:
        return Markup('<p class="empty">No checkpoint yet.</p>')
    rows = [
        render(
            '<tr><td class="num">{step}</td><td>{attempt}</td><td>{at}</td>'
            '<td><a href="{href}" title="{uri}">{label}</a></td></tr>',
            step=f"{event.step:,}",
            attempt=event.attempt,
            at=time_tag(event.at),
            href=store_link(event.checkpoint_uri or ""),
            uri=event.checkpoint_uri,
            label=store_label(store, event.checkpoint_uri or ""),
        )
        for event in reversed(view.checkpoints)
    ]
    return render(
        '<div class="scroll"><table><thead><tr><th scope="col" class="num">Step</th>'
        '<th scope="col">Attempt</th><th scope="col">Saved</th><th scope="col">Checkpoint</th>'
        "</tr></thead><tbody>{rows}</tbody></table></div>",
        rows=join(rows),
    )


def _short_uris(store: BlobStore | None, text: str) -> str:
    """``text`` with the store's URIs written as its keys (the links say where they are)."""
    return URI_PATTERN.sub(lambda found: store_label(store, found.group(0)), text)


def _evaluation(context: Context, view: RunView) -> Markup:
    parts = [
        render(
            "<p>Evaluated {at}: validation loss <strong>{loss}</strong>{message}</p>",
            at=time_tag(event.at),
            loss=number(event.val_loss),
            message=render(" — {m}", m=_short_uris(context.store, event.message))
            if event.message
            else "",
        )
        for event in view.evaluations
    ]
    for uri in view.reports:
        report = report_json(context.store, uri) if context.store else None
        summary = (
            render('<pre class="body json">{t}</pre>', t=json.dumps(report, indent=2)[:4000])
            if report is not None
            else Markup("")
        )
        parts.append(
            render(
                '<p><a href="{href}">Evaluation report</a></p>{summary}',
                href=store_link(uri),
                summary=summary,
            )
        )
    if not parts:
        return Markup('<p class="empty">Not evaluated yet.</p>')
    return join(parts)


def _chart(view: RunView) -> Markup:
    refresh = Markup(' data-refresh="3"') if view.status == "training" else Markup("")
    rows = join(
        render('<tr><td class="num">{s}</td><td class="num">{v}</td></tr>', s=int(s), v=f"{v:.4f}")
        for s, v in view.train[-50:]
    )
    return render(
        """<figure id="chart"{refresh} aria-live="off">
{svg}
<figcaption><span class="key train">training loss</span>
<span class="key val">validation loss</span>
<span class="key resume">resumed</span>
· step {step} · latest training loss {train}, validation loss {val}</figcaption>
<details><summary>Latest values as a table</summary><div class="scroll"><table>
<thead><tr><th scope="col" class="num">Step</th><th scope="col" class="num">Training loss</th>
</tr></thead><tbody>{rows}</tbody></table></div></details>
</figure>""",
        refresh=refresh,
        svg=loss_chart(
            view.train, view.validation, total_steps=view.total_steps, resumes=view.resumes
        ),
        step=_step(view),
        train=number(view.train_loss),
        val=number(view.val_loss),
        rows=rows,
    )


def run_page(context: Context, run: str) -> Response:
    registry = _registry(context)
    record = find_run(registry, run)
    if record is None:
        raise ConsoleError(404, "No such run", "No run in this store has that id or key.")
    view = run_view(registry, record, context.clock.now())
    model = view.request.get("model", {})
    body = render(
        """<h1>Run {run}</h1>
<section id="run-summary" data-refresh="5" aria-label="Summary"><dl class="facts">
<div><dt>Status</dt><dd>{status}</dd></div>
<div><dt>Step</dt><dd>{step}</dd></div>
<div><dt>Dataset version</dt><dd><code>{dataset}</code></dd></div>
<div><dt>Model</dt><dd>{model}</dd></div>
<div><dt>Attempts</dt><dd>{attempts} ({redeliveries} redelivered, {resumes} resumed;
{attached} duplicate request{plural} attached)</dd></div>
<div><dt>Idempotency key</dt><dd><code>{key}</code></dd></div>
<div><dt>Registered</dt><dd>{created}</dd></div>
<div><dt>Last event</dt><dd>{updated}</dd></div>
</dl></section>
<section aria-labelledby="loss-h"><h2 id="loss-h">Loss</h2>{chart}</section>
<div class="columns">
<section aria-labelledby="attempts-h" id="attempts" data-refresh="5">
<h2 id="attempts-h">Attempts</h2>{timeline}</section>
<section aria-labelledby="eval-h"><h2 id="eval-h">Evaluation</h2>{evaluation}</section>
</div>
<section aria-labelledby="ckpt-h" id="checkpoints" data-refresh="5">
<h2 id="ckpt-h">Checkpoints</h2>{checkpoints}</section>
<section aria-labelledby="req-h"><h2 id="req-h">Request</h2>
<details><summary>TrainRequest</summary>
<pre class="body json" tabindex="0">{request}</pre></details>
</section>""",
        run=record.run_id,
        status=_status(view),
        step=_step(view),
        dataset=view.dataset or "—",
        model=", ".join(f"{k} {v}" for k, v in model.items()) if isinstance(model, dict) else "",
        attempts=len(view.attempts),
        redeliveries=view.redeliveries,
        attached=view.attached,
        plural="" if view.attached == 1 else "s",
        resumes=len(view.resumes),
        key=record.idempotency_key,
        created=time_tag(record.created_at),
        updated=time_tag(view.updated_at),
        chart=_chart(view),
        timeline=_timeline(view),
        evaluation=_evaluation(context, view),
        checkpoints=_checkpoints(view, context.store),
        request=json.dumps(view.request, indent=2),
    )
    return page(context.page, f"Run {record.run_id}", body)


ROUTES = [
    Route("GET", "/runs", runs_page),
    Route("GET", "/runs/(?P<run>[^/]+)", run_page),
]
