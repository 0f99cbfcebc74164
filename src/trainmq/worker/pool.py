"""Warm handler processes: one per concurrent batch, reused, killed at the timeout.

Each ``HandlerProcess`` is a fresh interpreter (never a fork of the worker, so
no lock or connection of the worker leaks into it) that imports the handler
once.  An invocation that outlives the function timeout gets its process
SIGKILLed; a process that dies (``os._exit``, a segfault, the OOM killer) only
fails the batch it was running.  Either way the next batch gets a new process.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..errors import TrainmqError
from .child import FUNCTION_ENV, FrameReader, encode_frame, write_frame

__all__ = ["FunctionSpec", "HandlerInitError", "HandlerProcess", "Invocation"]

SANDBOX = "trainmq.worker.sandbox"
INIT_TIMEOUT = 60.0
CLOSE_TIMEOUT = 5.0


class HandlerInitError(TrainmqError):
    """The handler could not be imported (Lambda's init phase failed)."""


@dataclass(frozen=True)
class FunctionSpec:
    """What a handler process needs to know about the function it runs."""

    handler: str
    name: str
    arn: str
    memory: int
    region: str
    #: Variables the handler processes get whatever the worker's environment says.
    environment: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Invocation:
    """How one invocation ended: ``result``, ``error``, ``permanent``, ``timeout`` or ``crash``."""

    kind: str
    response: Any = None
    error: str = ""
    reason: str = ""
    trace: str = ""
    #: False when the handler never got the event (its process was already gone).
    started: bool = True


class HandlerProcess:
    """One warm execution environment, talking JSON frames over two pipes."""

    def __init__(self, spec: FunctionSpec, *, init_timeout: float = INIT_TIMEOUT) -> None:
        self.spec = spec
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        log_stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        function = {
            "handler": spec.handler,
            "name": spec.name,
            "arn": spec.arn,
            "memory": spec.memory,
            "log_stream": log_stream,
        }
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", SANDBOX, str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w),
                env=_environment(spec, function),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._frames = FrameReader(self._from_child)
        self._ready(init_timeout)

    @property
    def pid(self) -> int:
        return self.process.pid

    def _ready(self, timeout: float) -> None:
        frame = self._answer(timeout)
        if frame is None or frame.get("type") != "ready":
            self.kill()
            detail = frame.get("error") if frame else f"exited with {self.process.poll()}"
            raise HandlerInitError(f"cannot load handler {self.spec.handler}: {detail}")

    def _answer(self, timeout: float) -> dict[str, Any] | None:
        """The next frame, or None when the process died or ``timeout`` passed (then killed)."""
        readable, _, _ = select.select([self._from_child], [], [], max(0.0, timeout))
        if not readable:
            self.kill()
            return None
        try:
            return self._frames.read()
        except (OSError, ValueError):
            return None

    def invoke(self, event: dict[str, Any], timeout: float, request_id: str) -> Invocation:
        """Run the handler on ``event``; never raises for anything the handler does."""
        request = {"event": event, "timeout_ms": int(timeout * 1000), "request_id": request_id}
        return self.send(encode_frame(request), timeout)

    def send(self, request: bytes, timeout: float) -> Invocation:
        """``invoke`` with the request already encoded (one write, one select, one read).

        A write to a process that already died fails at once (EPIPE): ``Invocation``
        ``crash`` with nothing run, which ``started`` tells apart.
        """
        try:
            write_frame(self._to_child, request)
        except OSError:
            return Invocation("crash", error=self._death(), started=False)
        readable, _, _ = select.select([self._from_child], [], [], timeout)
        if not readable:
            self.kill()
            return Invocation("timeout", error=f"Task timed out after {timeout:.2f} seconds")
        try:
            frame = self._frames.read()
        except (OSError, ValueError):
            frame = None
        if frame is None:
            return Invocation("crash", error=self._death())
        if frame["type"] == "result":
            return Invocation("result", response=frame.get("response"))
        if frame["type"] == "permanent":
            return Invocation("permanent", reason=str(frame.get("reason", "")))
        return Invocation(
            "error",
            error=f"{frame.get('errorType')}: {frame.get('errorMessage')}",
            trace="".join(frame.get("stackTrace") or []),
        )

    def _death(self) -> str:
        try:
            code = self.process.wait(timeout=CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        if code is not None and code < 0:
            return f"handler process died of signal {signal.Signals(-code).name}"
        return f"handler process exited with status {code}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_kill(self) -> None:
        """SIGKILL without touching the pipes (safe from another thread mid-invoke)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def kill(self) -> None:
        """SIGKILL the process (a timed-out handler gets no chance to clean up, as in Lambda)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        self.process.wait()
        self._close_fds()

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """End the process: close its input, wait for it to exit, SIGKILL it if it will not."""
        with contextlib.suppress(OSError):
            os.close(self._to_child)
        self._to_child = -1
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_fds()

    def _close_fds(self) -> None:
        for name in ("_to_child", "_from_child"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)


def _environment(spec: FunctionSpec, function: dict[str, Any]) -> dict[str, str]:
    """The worker's environment plus Lambda's reserved variables (never overriding the user's)."""
    env = dict(os.environ)
    env.update(spec.environment)
    env[FUNCTION_ENV] = json.dumps(function)
    lambda_vars = {
        "_HANDLER": spec.handler,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": function["log_stream"],
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
    }
    for key, value in lambda_vars.items():
        env.setdefault(key, value)
    return env
