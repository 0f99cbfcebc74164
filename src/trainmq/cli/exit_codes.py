"""Named exit codes of the ``trainmq`` command (the README lists them, with when each is used)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    QUEUE_NOT_FOUND = 3
    INVALID_REQUEST = 4
    DATABASE_ERROR = 5
    CONFIGURATION_ERROR = 6
    NO_MESSAGES = 7
    HANDLER_ERROR = 8
    TIMEOUT = 9
    MISSING_DEPENDENCY = 10
    NO_DATABASE = 11
    PORT_UNAVAILABLE = 12
    DATABASE_IN_USE = 13
    INTERRUPTED = 130
