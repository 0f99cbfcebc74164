"""Objects of the dataset store that runs point at: checkpoints and evaluation reports.

A URI is shown only when it lies inside the store the server was given
(``--store``): it is mapped to a key of that store and the key must pass the
store's own key rules, so nothing outside the store can be read through here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

from ..errors import PermanentFailure
from ..store import BlobNotFound, BlobStore, StoreError
from ..training.locations import key_of
from .context import Context, Route
from .format import count
from .http import ROOT, ConsoleError, Response
from .layout import page
from .markup import Markup, join, render
from .messages_view import pretty_body
from .security import VIEW_RUNS

__all__ = ["ROUTES", "key_of_uri", "report_json", "store_label", "store_link"]

#: A JSON blob up to this size is shown in the page (a report); larger ones only download.
SHOW_BYTES = 1024 * 1024
LIST_LIMIT = 200


def key_of_uri(store: BlobStore, uri: str) -> str:
    """The key ``uri`` names in ``store``; a 403 ConsoleError when it is outside it."""
    try:
        return key_of(store, uri)
    except PermanentFailure as exc:
        raise ConsoleError(403, "Outside the store", exc.reason) from None


def store_label(store: BlobStore | None, uri: str) -> str:
    """``uri`` as a key of the store when it is inside it (shorter to read), else as it is."""
    if store is None:
        return uri
    try:
        return key_of_uri(store, uri)
    except ConsoleError:
        return uri


def store_link(uri: str, download: bool = False) -> str:
    return f"{ROOT}/store{'/download' if download else ''}?uri={quote(uri, safe='')}"


def _store(context: Context) -> BlobStore:
    context.viewer.require(VIEW_RUNS)
    if context.store is None:
        raise ConsoleError(404, "No store", "This server was started without a store.")
    return context.store


def object_page(context: Context) -> Response:
    store = _store(context)
    uri = context.request.arg("uri")
    key = key_of_uri(store, uri)
    try:
        info = store.head(key)
    except BlobNotFound:
        return _listing(context, store, uri, key)
    shown = Markup("")
    if info.size <= SHOW_BYTES and key.endswith(".json"):
        with store.get(key) as stream:
            text, _ = pretty_body(stream.read().decode("utf-8", "replace"))
        shown = render('<pre class="body json" tabindex="0">{text}</pre>', text=text)
    body = render(
        """<h1>Store object</h1>
<dl class="facts"><div><dt>URI</dt><dd><code>{uri}</code></dd></div>
<div><dt>Size</dt><dd>{size} bytes</dd></div>
<div><dt>sha256</dt><dd><code>{sha}</code></dd></div></dl>
<p><a href="{download}" download>Download</a></p>{shown}""",
        uri=uri,
        size=count(info.size),
        sha=info.sha256 or "(not recorded)",
        download=store_link(uri, download=True),
        shown=shown,
    )
    return page(context.page, "Store object", body)


def _listing(context: Context, store: BlobStore, uri: str, key: str) -> Response:
    keys = []
    for found in store.list_keys(key + "/"):
        keys.append(found)
        if len(keys) > LIST_LIMIT:
            break
    if not keys:
        raise ConsoleError(404, "Not in the store", f"Nothing is stored at {uri}.")
    base = uri.rstrip("/")
    items = [
        render(
            '<li><a href="{href}">{name}</a></li>',
            href=store_link(base + "/" + quote(k[len(key) + 1 :], safe="/")),
            name=k[len(key) + 1 :],
        )
        for k in keys[:LIST_LIMIT]
    ]
    more = Markup("<li>…</li>") if len(keys) > LIST_LIMIT else Markup("")
    body = render(
        '<h1>Store folder</h1><p><code>{uri}</code></p><ul class="keys">{items}{more}</ul>',
        uri=uri,
        items=join(items),
        more=more,
    )
    return page(context.page, "Store folder", body)


def download(context: Context) -> Response:
    store = _store(context)
    key = key_of_uri(store, context.request.arg("uri"))
    stream = store.get(key)
    filename = key.rsplit("/", 1)[-1]

    def chunks() -> Iterator[bytes]:
        with stream:
            yield from stream.iter_chunks()

    return Response(
        content_type="application/octet-stream",
        headers=[
            ("content-length", str(stream.size)),
            ("content-disposition", f"attachment; filename*=UTF-8''{quote(filename)}"),
        ],
        stream=chunks(),
    )


def report_json(store: BlobStore, uri: str) -> dict[str, object] | None:
    """The evaluation report at ``uri`` when it is a JSON object inside the store."""
    try:
        key = key_of_uri(store, uri)
        with store.get(key) as stream:
            data = json.loads(stream.read(SHOW_BYTES + 1))
    except (ConsoleError, StoreError, ValueError):
        return None
    return data if isinstance(data, dict) else None


ROUTES = [
    Route("GET", "/store", object_page),
    Route("GET", "/store/download", download),
]
