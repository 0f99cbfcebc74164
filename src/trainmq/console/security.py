"""Who is looking, what they may do, and proof that a form came from the console.

* **Open mode** (no credentials; the server only listens on loopback): every
  action is allowed, as it is on the API, and every page says so.
* **Signed in**: with credentials, a browser signs in with an access key id and
  its secret, or with a console token (``trainmq serve --console-token KEY``
  prints one).  The session cookie is an HMAC, keyed with the access key's
  secret, of the key id and an expiry: removing the key from the credentials
  file ends its sessions, and a restart does not.
* **Grants**: every console action is checked against the key's grants with
  the SQS action it amounts to (sending is ``SendMessage``, peeking is
  ``ReceiveMessage``, ...); training runs need ``trainmq:ViewRuns`` (or ``*``).
* **CSRF**: each browser gets a random cookie; every form carries an HMAC of it
  under a per-process secret, and a POST without the matching value is refused.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from ..clock import Clock, SystemClock
from ..server.auth import AccessKey, Credentials
from .http import ConsoleError, Request

__all__ = [
    "BROWSER_COOKIE",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "VIEW_RUNS",
    "Guard",
    "Viewer",
]

SESSION_COOKIE = "trainmq_console_session"
BROWSER_COOKIE = "trainmq_console_browser"
SESSION_SECONDS = 12 * 3600
#: The grant (beside the SQS actions) that shows training runs and their store objects.
VIEW_RUNS = "trainmq:ViewRuns"
_SESSION, _TOKEN = "console-session", "console-token"


@dataclass(frozen=True)
class Viewer:
    """Who is looking: an access key, or ``None`` in open mode (everything allowed)."""

    key: AccessKey | None

    @property
    def label(self) -> str:
        return "open mode" if self.key is None else f"{self.key.name} ({self.key.access_key_id})"

    def can(self, action: str, queue: str | None = None) -> bool:
        return self.key is None or self.key.allows(action, queue)

    def require(self, action: str, queue: str | None = None) -> None:
        if not self.can(action, queue):
            assert self.key is not None
            target = f" on queue {queue}" if queue else ""
            raise ConsoleError(
                403,
                "Not allowed",
                f"Access key {self.key.name} ({self.key.access_key_id}) has no grant for "
                f"{action}{target}.",
            )

    def visible(self, names: list[str]) -> list[str]:
        """The queues this viewer may list (ListQueues grants' queue patterns)."""
        if self.key is None:
            return names
        patterns = self.key.queue_patterns("ListQueues")
        return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")


class Guard:
    """Sessions, console tokens and CSRF values for one server."""

    def __init__(self, credentials: Credentials | None, clock: Clock | None = None) -> None:
        self.credentials = credentials
        self.clock: Clock = clock or SystemClock()
        self._csrf_secret = secrets.token_bytes(32)

    @property
    def open(self) -> bool:
        return self.credentials is None

    # -- signed values -------------------------------------------------------------------
    def _sign(self, purpose: str, key: AccessKey, expires: int) -> str:
        message = f"{purpose}\n{key.access_key_id}\n{expires}".encode()
        digest = hmac.new(key.secret_access_key.encode("utf-8"), message, hashlib.sha256)
        return f"{_b64(key.access_key_id)}.{expires}.{digest.hexdigest()}"

    def _open(self, purpose: str, value: str) -> AccessKey | None:
        if self.credentials is None:
            return None
        try:
            encoded_id, expires_text, _signature = value.split(".")
            key_id, expires = _unb64(encoded_id), int(expires_text)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        key = self.credentials.get(key_id)
        if key is None or expires < self.clock.now():
            return None
        expected = self._sign(purpose, key, expires)
        return key if hmac.compare_digest(expected.encode(), value.encode()) else None

    def console_token(self, access_key_id: str, seconds: int = SESSION_SECONDS) -> str:
        """A token that signs a browser in as ``access_key_id`` for ``seconds``."""
        key = self.credentials.get(access_key_id) if self.credentials else None
        if key is None:
            raise KeyError(access_key_id)
        return self._sign(_TOKEN, key, int(self.clock.now()) + seconds)

    # -- sessions ------------------------------------------------------------------------
    def sign_in(self, access_key_id: str, secret: str, token: str) -> str:
        """A session cookie value for a key id + secret, or for a console token."""
        refused = ConsoleError(401, "Sign-in failed", "Unknown key, wrong secret or old token.")
        if self.credentials is None:
            raise ConsoleError(400, "No sign-in here", "This server has no credentials.")
        if token.strip():
            key = self._open(_TOKEN, token.strip())
        else:
            key = self.credentials.get(access_key_id.strip())
            if key is not None and not hmac.compare_digest(
                key.secret_access_key.encode("utf-8"), secret.encode("utf-8")
            ):
                key = None
        if key is None:
            raise refused
        return self._sign(_SESSION, key, int(self.clock.now()) + SESSION_SECONDS)

    def viewer(self, request: Request) -> Viewer | None:
        """The request's viewer; ``None`` when the server has credentials and the browser
        has no valid session."""
        if self.credentials is None:
            return Viewer(None)
        key = self._open(_SESSION, request.cookies.get(SESSION_COOKIE, ""))
        return None if key is None else Viewer(key)

    # -- CSRF ----------------------------------------------------------------------------
    def csrf_token(self, browser_id: str) -> str:
        return hmac.new(self._csrf_secret, browser_id.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, request: Request) -> None:
        """Refuse a POST that does not carry this browser's CSRF value, or that a page of
        another origin sent."""
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        if origin and origin not in (f"http://{host}", f"https://{host}"):
            raise ConsoleError(403, "Refused", "The form was sent from another site.")
        given = request.field("csrf")
        if (
            request.new_browser
            or not given
            or not hmac.compare_digest(given.encode(), self.csrf_token(request.browser_id).encode())
        ):
            raise ConsoleError(
                403,
                "Form expired",
                "The form's security token is missing or stale (the server may have "
                "restarted). Reload the page and submit it again; nothing was changed.",
            )


def new_browser_id() -> str:
    return secrets.token_urlsafe(24)
