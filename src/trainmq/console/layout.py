"""The page around every console view: header, mode banner, navigation, notices."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .http import ROOT, Request, Response
from .markup import Markup, render
from .security import Viewer

__all__ = ["NOTICES", "Page", "error_page", "page"]

#: What a redirect after an action may announce (``?notice=...``); nothing else is shown.
NOTICES = {
    "sent": "Message sent.",
    "attributes": "Attributes saved.",
    "purged": "Queue purged.",
    "redrive-started": "Redrive started: progress is shown below.",
    "redriven": "Selected messages moved.",
    "signed-out": "Signed out.",
}
#: The detail a notice may carry (the sent message's id, a UUID); any other ``message=``
#: is not shown, so that a link cannot put an attacker's words in the status banner.
_NOTICE_DETAILS = {
    "sent": re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
}


@dataclass(frozen=True)
class Page:
    """What every view needs to draw its page: the viewer and this browser's CSRF value."""

    request: Request
    viewer: Viewer | None
    csrf: str
    open_mode: bool

    def csrf_field(self) -> Markup:
        return render('<input type="hidden" name="csrf" value="{csrf}">', csrf=self.csrf)


_LAYOUT = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{csrf}">
<title>{title} · trainmq console</title>
<link rel="stylesheet" href="{root}/static/console.css">
<script src="{root}/static/console.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<div class="brand"><a href="{root}/">trainmq console</a></div>
<nav aria-label="Sections"><a href="{root}/"{queues_current}>Queues</a>
<a href="{root}/runs"{runs_current}>Training runs</a></nav>
<div class="who">{who}</div>
</header>
{banner}
<main id="main">
{notice}
{body}
</main>
</body>
</html>
"""


def _who(context: Page) -> Markup:
    viewer = context.viewer
    if context.open_mode:
        return Markup('<span class="mode open">Open mode</span>')
    if viewer is None or viewer.key is None:
        return Markup("")
    return render(
        '<form method="post" action="{root}/logout" class="inline">{csrf}'
        '<span class="mode signed">Signed in as {label}</span> '
        '<button type="submit">Sign out</button></form>',
        root=ROOT,
        csrf=context.csrf_field(),
        label=viewer.label,
    )


def page(context: Page, title: str, body: Markup, *, status: int = 200) -> Response:
    banner = Markup("")
    if context.open_mode:
        banner = Markup(
            '<p class="banner" role="note">Open mode: this server has no credentials, so '
            "anyone who can reach it on this machine can read and change every queue "
            "(as on the API). Start it with <code>--credentials</code> to require "
            "sign-in.</p>"
        )
    notice_code = context.request.arg("notice")
    notice = Markup("")
    if notice_code in NOTICES:
        detail = context.request.arg("message")
        allowed = _NOTICE_DETAILS.get(notice_code)
        if allowed is None or not allowed.fullmatch(detail):
            detail = ""
        notice = render(
            '<p class="notice" role="status">{text}{detail}</p>',
            text=NOTICES[notice_code],
            detail=f" ({detail})" if detail else "",
        )
    section = context.request.path
    html = render(
        _LAYOUT,
        title=title,
        root=ROOT,
        csrf=context.csrf,
        queues_current=Markup(' aria-current="page"')
        if not section.startswith(("/runs", "/store"))
        else Markup(""),
        runs_current=Markup(' aria-current="page"')
        if section.startswith(("/runs", "/store"))
        else Markup(""),
        who=_who(context),
        banner=banner,
        notice=notice,
        body=body,
    )
    return Response(html, status=status)


def error_page(context: Page, status: int, title: str, detail: str) -> Response:
    body = render(
        '<h1>{title}</h1><p class="error" role="alert">{detail}</p>'
        '<p><a href="{root}/">Back to the queues</a></p>',
        title=title,
        detail=detail,
        root=ROOT,
    )
    return page(context, title, body, status=status)
