"""PostgreSQL addresses: what to connect to, in which schema, shown without secrets.

``postgresql://[user[:password]@][host][:port][/database][?schema=NAME&...]``
(``postgres://`` too).  Whatever the URL leaves out, libpq takes from the ``PG*``
environment variables and ``~/.pgpass``, as ``psql`` does.  ``schema`` is ours
(default ``trainmq``); every other query parameter is a libpq option.  A
password never appears in ``repr``, logs or error messages: ``display`` is the
form to show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from ...errors import ConfigurationError

__all__ = ["DEFAULT_SCHEMA", "SCHEMES", "PostgresAddress", "is_postgres_address"]

SCHEMES = ("postgresql", "postgres")
DEFAULT_SCHEMA = "trainmq"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def is_postgres_address(address: object) -> bool:
    return isinstance(address, str) and address.split("://", 1)[0].lower() in SCHEMES


@dataclass(frozen=True)
class PostgresAddress:
    """A parsed address: the libpq connection URL (secret) and the schema."""

    conninfo: str = field(repr=False)
    schema: str
    display: str

    @classmethod
    def parse(cls, address: str, schema: str | None = None) -> PostgresAddress:
        """Split our ``schema`` parameter off; ``schema`` given here wins over the URL's."""
        if not is_postgres_address(address):
            raise ConfigurationError("a PostgreSQL address starts with postgresql://")
        try:
            parts = urlsplit(address)
            port = parts.port  # raises on a malformed port
        except ValueError:
            raise ConfigurationError("the PostgreSQL address is malformed") from None
        query = parse_qsl(parts.query, keep_blank_values=True)
        named = [value for key, value in query if key == "schema"]
        if len(named) > 1:
            raise ConfigurationError("the PostgreSQL address names more than one schema")
        if schema is not None and named and named[0] != schema:
            raise ConfigurationError(
                f"the schema is given twice: {named[0]!r} in the address, {schema!r} as option"
            )
        chosen = schema or (named[0] if named else DEFAULT_SCHEMA)
        if not _SCHEMA_NAME.match(chosen):
            raise ConfigurationError(
                f"schema {chosen!r} is not a plain lower-case identifier (a-z, 0-9, _)"
            )
        rest = urlencode([(k, v) for k, v in query if k != "schema"])
        conninfo = f"postgresql://{parts.netloc}{parts.path}" + (f"?{rest}" if rest else "")
        host = parts.hostname or ""
        user = f"{parts.username}@" if parts.username else ""
        shown_port = f":{port}" if port else ""
        display = f"postgresql://{user}{host}{shown_port}{parts.path}?schema={chosen}"
        return cls(conninfo=conninfo, schema=chosen, display=display)
