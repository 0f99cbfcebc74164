"""The PostgreSQL backend: many hosts sharing queues in one database (extra ``postgres``)."""

from .config import PostgresAddress, is_postgres_address
from .engine import PostgresBackend

__all__ = ["PostgresAddress", "PostgresBackend", "is_postgres_address"]
