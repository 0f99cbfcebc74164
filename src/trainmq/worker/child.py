"""The handler process: a warm execution environment, like one Lambda sandbox.

Started as ``python -m trainmq.worker.sandbox READ_FD WRITE_FD`` with a JSON
description of the function in ``TRAINMQ_WORKER_FUNCTION``.  It imports the
handler once (Lambda's init phase), says ``ready``, then answers one
``invoke`` at a time until its input closes.  Requests and answers are JSON
frames (a 4-byte big-endian length, then UTF-8 JSON) on their own pipes, so a
handler's ``print`` cannot corrupt them, and nothing is ever unpickled.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import sys
import traceback
from collections.abc import Callable
from typing import Any

from ..errors import PermanentFailure
from .event import LambdaContext

__all__ = ["FUNCTION_ENV", "FrameReader", "encode_frame", "main", "write_frame"]

FUNCTION_ENV = "TRAINMQ_WORKER_FUNCTION"
_HEADER = struct.Struct(">I")
_CHUNK = 1 << 16


def encode_frame(message: dict[str, Any]) -> bytes:
    """One JSON frame (raises TypeError or ValueError for what JSON cannot hold)."""
    data = json.dumps(message, separators=(",", ":")).encode()
    return _HEADER.pack(len(data)) + data


def write_frame(fd: int, message: dict[str, Any] | bytes) -> None:
    """Write one frame (raises OSError when the other side is gone)."""
    view = memoryview(message if isinstance(message, bytes) else encode_frame(message))
    while view:
        written = os.write(fd, view)
        view = view[written:]


class FrameReader:
    """Reads JSON frames from a pipe, usually in one ``read`` each (header and body)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = b""

    def _fill(self, size: int) -> bool:
        while len(self._buffer) < size:
            chunk = os.read(self.fd, max(_CHUNK, size - len(self._buffer)))
            if not chunk:
                return False
            self._buffer += chunk
        return True

    def read(self) -> dict[str, Any] | None:
        """The next frame, or None when the other side closed (or died)."""
        if not self._fill(_HEADER.size):
            return None
        end = _HEADER.size + _HEADER.unpack_from(self._buffer)[0]
        if not self._fill(end):
            return None
        body, self._buffer = self._buffer[_HEADER.size : end], self._buffer[end:]
        message = json.loads(body)
        if not isinstance(message, dict):
            raise ValueError("a frame must hold a JSON object")
        return message


def _load(spec: str) -> Callable[..., Any]:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, function_name = spec.partition(":")
    handler = getattr(importlib.import_module(module_name), function_name)
    if not callable(handler):
        raise TypeError(f"{spec} is not callable")
    return handler  # type: ignore[no-any-return]


def _invoke(
    handler: Callable[..., Any], request: dict[str, Any], function: dict[str, Any]
) -> bytes:
    """Run the handler once; the answer, as an encoded frame."""
    context = LambdaContext(
        function_name=function["name"],
        invoked_function_arn=function["arn"],
        memory_limit_in_mb=function["memory"],
        timeout_ms=request["timeout_ms"],
        log_stream_name=function["log_stream"],
        aws_request_id=request["request_id"],
    )
    try:
        response = handler(request["event"], context)
    except PermanentFailure as exc:
        return encode_frame({"type": "permanent", "reason": exc.reason})
    except Exception as exc:
        return encode_frame({
            "type": "error",
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            # The whole traceback (its last 50 entries), as Lambda and Celery log it.
            "stackTrace": traceback.format_exception(exc)[-50:],
        })
    try:
        return encode_frame({"type": "result", "response": response})
    except (TypeError, ValueError) as exc:
        return encode_frame(
            {"type": "error", "errorType": "Runtime.MarshalError", "errorMessage": str(exc)}
        )


def main(argv: list[str]) -> int:
    read_fd, write_fd = int(argv[1]), int(argv[2])
    function = json.loads(os.environ[FUNCTION_ENV])
    try:
        handler = _load(function["handler"])
    except BaseException as exc:  # init failures of any kind are reported, then fatal
        write_frame(write_fd, {"type": "init_error", "error": f"{type(exc).__name__}: {exc}"})
        return 1
    write_frame(write_fd, {"type": "ready", "pid": os.getpid()})
    requests = FrameReader(read_fd)
    while True:
        request = requests.read()
        if request is None:
            return 0
        write_frame(write_fd, _invoke(handler, request, function))

