"""Who is looking, what they may do, and proof that a form came from the console.

* **Open mode** (no credentials; the server only listens on loopback): every
  action is allowed, as it is on the API, and every page says so.
* **Signed in**: with credentials, a browser signs in with an access key id and
  its secret, or with a console token (``trainmq serve --console-token KEY``
  prints one).  The session cookie is a random value that names a session the
  server holds (in memory, or with ``serve --workers N`` in a folder its processes
  share): signing out deletes it, a key that is no longer in the
  credentials (or :meth:`Guard.revoke_key`) ends all of its sessions, and a
  restart ends every session.  The secret is compared in constant time whether or
  not the key id exists, so sign-in does not reveal which key ids do.
* **Grants**: every console action is checked against the key's grants with
  the SQS action it amounts to (sending is ``SendMessage``, peeking is
  ``ReceiveMessage``, ...); training runs need ``trainmq:ViewRuns`` (or ``*``).
* **CSRF**: each browser gets a random cookie; every form carries an HMAC of it
  under a per-server secret, and a POST without the matching value is refused.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..clock import Clock, SystemClock
from ..server.auth import AccessKey, Credentials
from .http import ConsoleError, Request
from .sessions import FileSessions, MemorySessions, Sessions, shared_secret

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
_TOKEN = "console-token"
#: Sessions kept at most; past it the oldest end (each is one sign-in of a browser).
MAX_SESSIONS = 10_000


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
    """Sessions, console tokens and CSRF values for one server.

    ``shared`` is a folder the processes of one server share (``serve --workers N``):
    the sessions and the CSRF secret live there, so every process honours them.
    """

    def __init__(
        self,
        credentials: Credentials | None,
        clock: Clock | None = None,
        *,
        shared: Path | None = None,
    ) -> None:
        self.credentials = credentials
        self.clock: Clock = clock or SystemClock()
        self._dummy_secret = secrets.token_urlsafe(30).encode()
        self._sessions: Sessions
        if shared is None:
            self._csrf_secret = secrets.token_bytes(32)
            self._sessions = MemorySessions(MAX_SESSIONS)
        else:
            shared.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._csrf_secret = shared_secret(shared / "csrf.key")
            self._sessions = FileSessions(shared / "sessions", MAX_SESSIONS)

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
            # Compared in constant time even for an unknown key id (against a random
            # secret), so the answer's timing does not tell which key ids exist.
            expected = key.secret_access_key.encode("utf-8") if key else self._dummy_secret
            matches = hmac.compare_digest(expected, secret.encode("utf-8"))
            if not matches:
                key = None
        if key is None:
            raise refused
        return self._new_session(key)

    def _new_session(self, key: AccessKey) -> str:
        now = self.clock.now()
        cookie = secrets.token_urlsafe(32)
        self._sessions.add(_digest(cookie), key, now + SESSION_SECONDS, now)
        return cookie

    def sign_out(self, request: Request) -> None:
        """End the request's session: its cookie no longer signs anyone in."""
        self._sessions.remove(_digest(request.cookies.get(SESSION_COOKIE, "")))

    def revoke_key(self, access_key_id: str) -> int:
        """End every session of a key (removed or compromised); how many ended."""
        return self._sessions.revoke(access_key_id)

    def viewer(self, request: Request) -> Viewer | None:
        """The request's viewer; ``None`` when the server has credentials and the browser
        has no valid session."""
        if self.credentials is None:
            return Viewer(None)
        cookie = request.cookies.get(SESSION_COOKIE, "")
        digest = _digest(cookie)
        key_id = self._sessions.key_id(digest) if cookie else None
        if key_id is None:
            return None
        key = self.credentials.get(key_id)
        expires = self._sessions.find(digest, key)
        if key is None or expires is None or expires < self.clock.now():
            self._sessions.remove(digest)  # expired, or the key was removed or changed
            return None
        return Viewer(key)

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


def _digest(cookie: str) -> bytes:
    """Sessions are found by a hash of the cookie, not the cookie itself (no timing leak)."""
    return hashlib.sha256(cookie.encode("utf-8", "replace")).digest()


def new_browser_id() -> str:
    return secrets.token_urlsafe(24)
