"""The worker's own Prometheus metrics, served by a tiny HTTP thread when asked for.

Counters of batches by outcome, messages by fate (deleted, retried,
dead-lettered, filtered out, released at shutdown), and a histogram of batch
durations.  ``GET /metrics`` answers the Prometheus text format; ``GET /health``
answers ``{"status": "ok"}`` (503 ``stopping`` once the worker shuts down), for
liveness probes.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["MetricsServer", "WorkerMetrics"]

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0, 900.0)


class WorkerMetrics:
    """Thread-safe counters for one worker."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self._lock = threading.Lock()
        self.batches: Counter[str] = Counter()
        self.messages: Counter[str] = Counter()
        self._buckets = [0] * len(BUCKETS)
        self._duration_sum = 0.0
        self._duration_count = 0

    def batch(self, outcome: str, seconds: float) -> None:
        with self._lock:
            self.batches[outcome] += 1
            self._duration_sum += seconds
            self._duration_count += 1
            for index, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self._buckets[index] += 1

    def count(self, fate: str, number: int) -> None:
        if number:
            with self._lock:
                self.messages[fate] += number

    def render(self) -> str:
        label = f'queue="{self.queue}"'
        lines = [
            "# HELP trainmq_worker_batches_total Batches handled, by outcome.",
            "# TYPE trainmq_worker_batches_total counter",
        ]
        with self._lock:
            for outcome, value in sorted(self.batches.items()):
                lines.append(f'trainmq_worker_batches_total{{{label},outcome="{outcome}"}} {value}')
            lines += [
                "# HELP trainmq_worker_messages_total Messages, by what became of them.",
                "# TYPE trainmq_worker_messages_total counter",
            ]
            for fate, value in sorted(self.messages.items()):
                lines.append(f'trainmq_worker_messages_total{{{label},fate="{fate}"}} {value}')
            lines += [
                "# HELP trainmq_worker_batch_duration_seconds Handler time per batch.",
                "# TYPE trainmq_worker_batch_duration_seconds histogram",
            ]
            for bound, value in zip(BUCKETS, self._buckets, strict=True):
                lines.append(
                    f'trainmq_worker_batch_duration_seconds_bucket{{{label},le="{bound}"}} {value}'
                )
            name = "trainmq_worker_batch_duration_seconds"
            lines.append(f'{name}_bucket{{{label},le="+Inf"}} {self._duration_count}')
            lines.append(f"{name}_sum{{{label}}} {self._duration_sum:.6f}")
            lines.append(f"{name}_count{{{label}}} {self._duration_count}")
        return "\n".join(lines) + "\n"


class MetricsServer:
    """``GET /metrics`` and ``GET /health`` on 127.0.0.1 (or ``host``), on a daemon thread."""

    def __init__(
        self,
        metrics: WorkerMetrics,
        port: int,
        host: str = "127.0.0.1",
        healthy: Callable[[], bool] = lambda: True,
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/health":
                    ok = healthy()
                    status = b'{"status": "ok"}' if ok else b'{"status": "stopping"}'
                    self._answer(200 if ok else 503, "application/json", status)
                elif path == "/metrics":
                    text = metrics.render().encode()
                    self._answer(200, "text/plain; version=0.0.4; charset=utf-8", text)
                else:
                    self.send_error(404)

            def _answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="trainmq-metrics", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
