"""``Worker``: Lambda's SQS event-source mapping, on any machine.

Feeder threads long-poll the queue and hold batches ready (``receive``);
``concurrency`` slots each take the next batch, drop what the filters reject,
hand it to the slot's warm handler process, and settle it by Lambda's rules
(see ``outcome``): successes go to the delete batcher (``deletes``), which
deletes those of several invocations in one call; failures are settled at
once.  The queue's own RedrivePolicy ends the retries.  FIFO order holds
because the queue hands out one in-flight batch per message group, and a
failure fails the rest of its group's batch.

Time comes from an injected clock; stopping is an injected (or internal) event.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..clock import Clock, SystemClock
from ..errors import ConfigurationError
from ..queue import LocalClient, open_service
from ..store import open_store
from ..store.claimcheck import ClaimCheckClient
from .child import encode_frame
from .config import WorkerConfig
from .deletes import DELETE_LINGER, DeleteBatcher
from .event import sqs_record
from .filters import matches_any
from .heartbeat import Heartbeat
from .metrics import MetricsServer, WorkerMetrics
from .outcome import Verdict, judge
from .pool import FunctionSpec, HandlerProcess, Invocation
from .progress import ProgressGuard
from .receive import RETRY_PAUSE, UNAVAILABLE, UNRESOLVED, Batch, Receiver, untrack
from .settle import Settler

__all__ = ["Worker"]

log = logging.getLogger("trainmq.worker")

#: Long polls of a remote endpoint cannot be cut short at shutdown, so they are kept short.
REMOTE_WAIT_SECONDS = 2


class Worker:
    """One event-source mapping: ``start()``, then ``stop(timeout)`` (or ``abort()``)."""

    def __init__(
        self,
        config: WorkerConfig,
        *,
        client: Any | None = None,
        clock: Clock | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.stopping = stop_event or threading.Event()
        self._own_client = client is None
        self._client = client
        self.metrics = WorkerMetrics(config.queue_name)
        self.metrics_server: MetricsServer | None = None
        self.heartbeat: Heartbeat | None = None
        self._processes: list[HandlerProcess | None] = []
        self._threads: list[threading.Thread] = []
        self._aborted = threading.Event()
        self._progress: ProgressGuard | None = None
        self.receiver: Receiver | None = None
        self.deletes: DeleteBatcher | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("the worker is not started")
        return self._client

    @property
    def _release_waiters(self) -> Any:
        """The embedded engine's way to end long polls at once (None for remote endpoints)."""
        backend = getattr(getattr(self._client, "service", None), "backend", None)
        return getattr(backend, "release_waiters", None)

    # -- starting ----------------------------------------------------------------------------
    def start(self) -> None:
        """Check the queue, warm the handler processes, then start polling.

        Raises ``ConfigurationError`` (with AWS's wording for the visibility rule)
        or ``HandlerInitError`` before any message is received.
        """
        if self._client is None:
            clock = self.clock if not isinstance(self.clock, SystemClock) else None
            self._client = LocalClient(
                open_service(self.config.backend, clock=clock, durability=self.config.durability)
            )
        # Large bodies arrive as Extended Client pointers: resolve them before the handler
        # sees them, and delete a payload once its message is deleted (receipt handles
        # carry the pointer, as the extended clients do).
        address = self.config.store
        self._client = ClaimCheckClient(
            self._client,
            lambda: open_store(address),
            delete_payloads=self.config.delete_payloads,
        )
        self.wait_seconds = self.config.wait_seconds
        if self._release_waiters is None:
            self.wait_seconds = min(self.wait_seconds, REMOTE_WAIT_SECONDS)
        if self.config.progress_timeout is not None:
            self._progress = ProgressGuard(self.config.progress_timeout, self._untrack)
        try:
            self._inspect_queue()
            self._processes = self._warm(self.config.concurrency)
        except BaseException:
            self._close_client()
            raise
        if self.config.heartbeat:
            self.heartbeat = Heartbeat(self.client, self.queue_url, self.visibility, self.clock)
            self.heartbeat.start()
        if self._progress is not None:
            self._progress.start()
        self.receiver = Receiver(
            self.client,
            self.queue_url,
            batch_size=self.config.batch_size,
            batching_window=self.config.batching_window,
            concurrency=self.config.concurrency,
            fifo=self.fifo,
            wait_seconds=self.wait_seconds,
            heartbeat=self.heartbeat,
            clock=self.clock,
            stopping=self.stopping,
            queue_name=self.config.queue_name,
            long_running=self.config.long_running,
        )
        # FIFO: a group's next message waits for this delete, so it is not held back.
        self.deletes = DeleteBatcher(
            self.settler.delete, self._untrack, linger=0.0 if self.fifo else DELETE_LINGER
        )
        self.deletes.start()
        if self.config.metrics_port is not None:
            self.metrics_server = MetricsServer(
                self.metrics,
                self.config.metrics_port,
                host=self.config.metrics_host,
                healthy=lambda: not self.stopping.is_set(),
            )
            self.metrics_server.start()
        for slot in range(self.config.concurrency):
            thread = threading.Thread(
                target=self._slot_loop, args=(slot,), name=f"trainmq-slot-{slot}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        self.receiver.start()
        log.info(
            "worker started: queue=%s handler=%s concurrency=%d batch_size=%d",
            self.config.queue_name,
            self.config.handler,
            self.config.concurrency,
            self.config.batch_size,
            extra={"queue": self.config.queue_name, "handler": self.config.handler},
        )

    def _inspect_queue(self) -> None:
        config = self.config
        if "/" in config.queue:
            self.queue_url = config.queue
        else:
            self.queue_url = self.client.get_queue_url(QueueName=config.queue)["QueueUrl"]
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["All"]
        )["Attributes"]
        self.queue_arn: str = attributes["QueueArn"]
        self.fifo = attributes.get("FifoQueue") == "true"
        self.visibility = int(attributes["VisibilityTimeout"])
        self._check_fifo()
        self._check_visibility()
        dlq_url = self._dead_letter_url(attributes.get("RedrivePolicy"))
        self.settler = Settler(
            self.client,
            self.queue_url,
            self.queue_arn,
            dlq_url,
            fifo=self.fifo,
            backoff=config.backoff,
            backoff_max=config.backoff_max,
        )

    def _check_fifo(self) -> None:
        if self.fifo and self.config.batching_window > 0:
            raise ConfigurationError("Batching window is not supported for FIFO queues")
        if self.fifo and self.config.batch_size > 10:
            raise ConfigurationError("--batch-size must be between 1 and 10 for FIFO queues")

    def _check_visibility(self) -> None:
        timeout = self.config.timeout
        shown = int(timeout) if float(timeout).is_integer() else timeout
        if self.config.long_running and self.config.heartbeat:
            return  # heartbeats keep a long handler's messages invisible (our extension)
        if self.visibility < timeout:
            raise ConfigurationError(
                f"Queue visibility timeout: {self.visibility} seconds is less than "
                f"Function timeout: {shown} seconds"
            )
        if self.visibility < 6 * timeout:
            log.warning(
                "visibility timeout %d s is less than 6 × the function timeout %s s = %s s "  # noqa: RUF001
                "(AWS's recommendation): a retried batch may be redelivered while a slow "
                "invocation still runs",
                self.visibility,
                shown,
                _number(6 * timeout),
                extra={"queue": self.config.queue_name},
            )

    def _dead_letter_url(self, policy_text: str | None) -> str | None:
        if not policy_text:
            if not self.config.allow_no_dlq:
                raise ConfigurationError(
                    f"queue {self.config.queue_name} has no dead-letter queue (RedrivePolicy): a "
                    "message that always fails would cycle until its retention ends; give it one "
                    "(trainmq queue create NAME --dlq NAME-dlq) or pass --no-dlq"
                )
            return None
        target = json.loads(policy_text)["deadLetterTargetArn"].rsplit(":", 1)[1]
        return str(self.client.get_queue_url(QueueName=target)["QueueUrl"])

    def _spec(self) -> FunctionSpec:
        region, account = self.queue_arn.split(":")[3:5]
        name = self.config.name
        # Handlers that send messages or read the store (the pipeline's stages) reach the
        # same queues and store as their worker, whichever way the worker was told them.
        environment = []
        if self.config.backend is not None:
            environment.append(("TRAINMQ_BACKEND", str(self.config.backend)))
        if self.config.store is not None:
            environment.append(("TRAINMQ_STORE", str(self.config.store)))
        if self._progress is not None:
            environment.append(self._progress.environment())
        return FunctionSpec(
            handler=self.config.handler,
            name=name,
            arn=f"arn:aws:lambda:{region}:{account}:function:{name}",
            memory=self.config.memory_limit_in_mb,
            region=region,
            environment=tuple(environment),
        )

    def _warm(self, count: int) -> list[HandlerProcess | None]:
        spec = self._spec()
        with ThreadPoolExecutor(max_workers=min(count, 8)) as pool:
            futures = [pool.submit(HandlerProcess, spec) for _ in range(count)]
            started: list[HandlerProcess | None] = []
            failure: BaseException | None = None
            for future in futures:
                try:
                    started.append(future.result())
                except BaseException as exc:
                    failure = failure or exc
        if failure is not None:
            for process in started:
                if process is not None:
                    process.close()
            raise failure
        return started

    # -- the slot loop -----------------------------------------------------------------------
    def _slot_loop(self, slot: int) -> None:
        receiver = self.receiver
        assert receiver is not None
        while (batch := receiver.take()) is not None:
            try:
                self._handle(slot, batch.messages, batch.leases)
            except Exception:
                self._untrack(batch.leases)
                log.exception("settling a batch failed", extra={"queue": self.config.queue_name})
                self.clock.wait(self.stopping, RETRY_PAUSE)

    def _untrack(self, leases: list[int]) -> None:
        untrack(self.heartbeat, leases)

    def _release(self, batches: list[Batch]) -> None:
        messages = [m for batch in batches for m in batch.messages]
        for batch in batches:
            self._untrack(batch.leases)
        if not messages:
            return
        self.settler.release([m["ReceiptHandle"] for m in messages])
        self.metrics.count("released", len(messages))
        log.info(
            "released %d unstarted messages",
            len(messages),
            extra={"queue": self.config.queue_name, "released": len(messages)},
        )

    def _handle(self, slot: int, messages: list[dict[str, Any]], leases: list[int]) -> None:
        unresolved = [m for m in messages if UNRESOLVED in m]
        unavailable = [m for m in messages if m.pop(UNAVAILABLE, False)]
        if unresolved or unavailable:
            reasons = {m["MessageId"]: m.pop(UNRESOLVED) for m in unresolved}
            refused = set(self.settler.dead_letter(unresolved, reasons))
            retry = [*unavailable, *(m for m in unresolved if m["MessageId"] in refused)]
            self.settler.back_off(retry)
            self.metrics.count("dead_lettered", len(unresolved) - len(refused))
            self.metrics.count("failed", len(unavailable) + len(refused))
            skipped = {m["MessageId"] for m in [*unresolved, *unavailable]}
            messages = [m for m in messages if m["MessageId"] not in skipped]
            if not messages:
                self._untrack(leases)
                return
        try:
            if self.config.parsed_filters:
                messages = self._filter(messages)
                if not messages:
                    self._untrack(leases)
                    return
            records = [sqs_record(m, self.queue_arn) for m in messages]
            started = time.monotonic()
            invocation = self._invoke(slot, records, leases)
        except BaseException:
            self._untrack(leases)
            raise
        duration = time.monotonic() - started
        if self.receiver is not None:
            self.receiver.observe(duration)
        verdict = judge(
            invocation,
            records,
            report_item_failures=self.config.report_batch_item_failures,
            fifo=self.fifo,
        )
        self._settle(messages, verdict, leases)
        if invocation.trace:
            log.error(
                "handler %s raised on a batch of %d (message ids %s):\n%s",
                self.config.handler,
                len(records),
                ", ".join(r["messageId"] for r in records),
                invocation.trace.rstrip(),
                extra={"queue": self.config.queue_name, "error": invocation.error},
            )
        self._report(records, verdict, duration)

    def _filter(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keep: list[dict[str, Any]] = []
        drop: list[dict[str, Any]] = []
        for message in messages:
            record = sqs_record(message, self.queue_arn)
            wanted = matches_any(self.config.parsed_filters, record)
            (keep if wanted else drop).append(message)
        if drop:
            self._deletes.add([m["ReceiptHandle"] for m in drop])
            self.metrics.count("filtered", len(drop))
        return keep

    def _invoke(self, slot: int, records: list[dict[str, Any]], leases: list[int]) -> Invocation:
        request = encode_frame({
            "event": {"Records": records},
            "timeout_ms": int(self.config.timeout * 1000),
            "request_id": _request_id(),
        })
        for _ in range(2):  # a process found dead before it got the event is replaced once
            process = self._processes[slot]
            if process is None:
                try:
                    process = self._processes[slot] = HandlerProcess(self._spec())
                except Exception as exc:
                    return Invocation("crash", error=f"cannot start a handler process: {exc}")
            if self._progress is not None:
                self._progress.begin(slot, process, leases)
            try:
                invocation = process.send(request, self.config.timeout)
            finally:
                if self._progress is not None:
                    self._progress.end(slot)
            if invocation.kind in ("timeout", "crash") or self._aborted.is_set():
                process.kill()
                self._processes[slot] = None
            if invocation.started or self._aborted.is_set():
                break
            log.warning("handler process found dead before an invocation: %s; starting another",
                        invocation.error, extra={"queue": self.config.queue_name})
        return invocation

    def _settle(self, messages: list[dict[str, Any]], verdict: Verdict, leases: list[int]) -> None:
        """Successes go to the delete batcher; failures are settled here and now.

        When all succeeded, the heartbeat leases end once the deletes are done; otherwise
        they end first, so that no beat undoes a failure's backoff.
        """
        by_id = {m["MessageId"]: m for m in messages}
        succeeded = [by_id[i]["ReceiptHandle"] for i in verdict.succeeded]
        self.metrics.count("deleted", len(succeeded))
        if len(succeeded) == len(messages):
            self._deletes.add(succeeded, list(leases))
            leases.clear()
            return
        self._untrack(leases)
        self._deletes.add(succeeded)
        refused = self.settler.dead_letter(
            [by_id[i] for i in verdict.permanent], verdict.permanent
        )
        failed = [by_id[i] for i in [*verdict.failed, *refused]]
        self.settler.back_off(failed)
        self.metrics.count("dead_lettered", len(verdict.permanent) - len(refused))
        self.metrics.count("failed", len(failed))

    @property
    def _deletes(self) -> DeleteBatcher:
        if self.deletes is None:
            raise RuntimeError("the worker is not started")
        return self.deletes

    def _report(self, records: list[dict[str, Any]], verdict: Verdict, duration: float) -> None:
        self.metrics.batch(verdict.outcome, duration)
        level = logging.INFO if verdict.outcome == "success" else logging.WARNING
        if not log.isEnabledFor(level):
            return
        counts = [int(r["attributes"].get("ApproximateReceiveCount", "0")) for r in records]
        fields = {
            "queue": self.config.queue_name,
            "batch_size": len(records),
            "duration_ms": round(duration * 1000, 3),
            "outcome": verdict.outcome,
            "succeeded": len(verdict.succeeded),
            "failed": len(verdict.failed),
            "dead_lettered": len(verdict.permanent),
            "receive_counts": counts,
        }
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        if verdict.error:
            text += f" error={verdict.error!r}"
        log.log(level, "batch %s", text, extra=fields)

    # -- stopping ------------------------------------------------------------------------------
    def stop(self, timeout: float | None = None) -> None:
        """Stop receiving, finish running batches within ``timeout``, release the rest.

        ``timeout`` defaults to the function timeout plus a few seconds: a running
        batch cannot take longer than that anyway.  Handlers that report progress
        are preempted instead: asked to checkpoint and return within ``preempt_grace``.
        """
        self.stopping.set()
        deadline = time.monotonic() + (self.config.timeout + 5 if timeout is None else timeout)
        if self._progress is not None and self._progress.preempt():
            deadline = min(deadline, time.monotonic() + self.config.preempt_grace)
        if self._own_client and self._client is not None:
            release = self._release_waiters
            if release is not None:
                release()
        if self.receiver is not None:
            self.receiver.wake()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            self.abort()
            for thread in self._threads:
                thread.join(5.0)
        if self.receiver is not None:
            # A feeder in a remote long poll returns within REMOTE_WAIT_SECONDS.
            self.receiver.join(REMOTE_WAIT_SECONDS + 5.0)
        self._shutdown()

    def abort(self) -> None:
        """Kill every handler process now; their messages return after the visibility timeout."""
        self._aborted.set()
        self.stopping.set()
        if self.receiver is not None:
            self.receiver.wake()
        for process in list(self._processes):
            if process is not None:
                process.signal_kill()

    def _shutdown(self) -> None:
        if self.deletes is not None:
            self.deletes.close()
        if self.receiver is not None:
            self._release(self.receiver.drain())
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self._progress is not None:
            self._progress.close()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        for index, process in enumerate(self._processes):
            if process is not None:
                process.close()
                self._processes[index] = None
        self._close_client()
        log.info("worker stopped", extra={"queue": self.config.queue_name})

    def _close_client(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None


def _request_id() -> str:
    """A version-4 UUID, as Lambda's request ids are (without a system call per invocation)."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def _number(value: float) -> str:
    """A number of seconds as written in the options: ``120``, not ``120.0``."""
    return str(int(value)) if float(value).is_integer() else str(value)
