"""Signing in and out (only when the server has credentials)."""

from __future__ import annotations

from urllib.parse import quote

from .context import Context, Route
from .http import ROOT, ConsoleError, Request, Response, redirect
from .layout import page
from .markup import render
from .security import SESSION_COOKIE, SESSION_SECONDS

__all__ = ["ROUTES", "login", "login_page", "to_login"]

_FORM = """<h1>Sign in</h1>
<p>This server requires credentials. Sign in with an access key id and its secret
from the server's credentials file, or with a console token
(<code>trainmq serve --console-token KEY_ID</code> prints one).</p>
{error}
<form method="post" action="{root}/login" class="stack">{csrf}
<input type="hidden" name="next" value="{next}">
<fieldset><legend>Access key</legend>
<label for="access_key_id">Access key id</label>
<input id="access_key_id" name="access_key_id" autocomplete="username" value="{key_id}">
<label for="secret">Secret access key</label>
<input id="secret" name="secret" type="password" autocomplete="current-password">
</fieldset>
<fieldset><legend>or a console token</legend>
<label for="token">Console token</label>
<input id="token" name="token" autocomplete="off">
</fieldset>
<button type="submit">Sign in</button>
</form>"""


def _safe_next(target: str) -> str:
    """Only a path of this console, as ASCII: never another site after signing in.

    Control characters are refused (browsers drop tabs and newlines from URLs, so
    ``/\t/evil.example`` would become ``//evil.example``; CR/LF would end the
    Location header), and anything outside ASCII is percent-encoded so that the
    header can be written at all.
    """
    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target)
    ):
        return "/"
    return quote(target, safe="/?&=%:@-._~+,;!$'()*")


def to_login(request: Request) -> Response:
    query = "?" + "&".join(f"{k}={quote(v)}" for k, vs in request.query.items() for v in vs)
    target = request.path + (query if request.query else "")
    return Response(
        status=303, headers=[("location", f"{ROOT}/login?next={quote(target, safe='')}")]
    )


def _form(context: Context, error: str = "", key_id: str = "", status: int = 200) -> Response:
    request = context.request
    body = render(
        _FORM,
        root=ROOT,
        csrf=context.csrf_field(),
        next=_safe_next(request.field("next") or request.arg("next", "/")),
        key_id=key_id,
        error=render('<p class="error" role="alert">{e}</p>', e=error) if error else "",
    )
    return page(context.page, "Sign in", body, status=status)


def login_page(context: Context) -> Response:
    if context.guard.open:
        return redirect("/")
    return _form(context)


def login(context: Context) -> Response:
    request = context.request
    try:
        cookie = context.guard.sign_in(
            request.field("access_key_id"), request.field("secret"), request.field("token")
        )
    except ConsoleError as error:
        if error.status != 401:
            raise
        return _form(context, error.detail, request.field("access_key_id"), status=401)
    target = ROOT + _safe_next(request.field("next", "/"))
    return Response(
        status=303,
        headers=[
            ("location", target),
            (
                "set-cookie",
                f"{SESSION_COOKIE}={cookie}; Path={ROOT}; Max-Age={SESSION_SECONDS}; HttpOnly; "
                "SameSite=Strict",
            ),
        ],
    )


def logout(context: Context) -> Response:
    context.guard.sign_out(context.request)
    response = redirect("/login", notice="signed-out")
    response.headers.append(
        ("set-cookie", f"{SESSION_COOKIE}=; Path={ROOT}; Max-Age=0; HttpOnly; SameSite=Strict")
    )
    return response


ROUTES = [
    Route("GET", "/login", login_page),
    Route("POST", "/login", login),
    Route("POST", "/logout", logout),
]
