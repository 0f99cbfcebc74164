"""A sender in another process, started ahead and told when to send.

The child imports trainmq and opens the database first, then waits for a line
on stdin; it prints the wall-clock time just before its send, so a test can
measure how soon a waiting receive in this process sees the message.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_CHILD = """
import sys, time
from trainmq.queue.client import open_service
service = open_service(sys.argv[1])
print("ready", flush=True)
for line in sys.stdin:
    sent_at = time.time()
    service.send_message({"QueueUrl": sys.argv[2], "MessageBody": line.strip()})
    print(sent_at, flush=True)
service.backend.close()
"""


class OtherProcessSender:
    """``send(body)`` sends from a child process and returns when it started sending."""

    def __init__(self, database: Path, queue_url: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(database), queue_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        assert self._process.stdout.readline().strip() == "ready"

    def send(self, body: str) -> float:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(body + "\n")
        self._process.stdin.flush()
        return float(self._process.stdout.readline())

    def close(self) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.close()
        try:
            assert self._process.wait(timeout=30) == 0
        finally:
            self._process.stdout.close()
