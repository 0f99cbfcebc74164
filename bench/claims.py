"""What fsyncing receive claims costs: receive+delete cycles per second, with and without.

Run as ``python bench/claims.py [--quick] [--dir DIR]``.

``trainmq serve`` fsyncs the claims its remote consumers make (their receipt
handles outlive a power loss of the server; docs/durability.md), where an
embedded consumer's claim is committed without an fsync.  This measures one
and four consumer threads receiving and deleting one message at a time on the
engine, both ways, on the same disk, next to the disk's raw fsync rate.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from disk import file_system_type, fsync_rate
from trainmq.queue import SQSService
from trainmq.queue.sqlite import SqliteBackend


def cycles_per_second(folder: Path, durable_receives: bool, threads: int, seconds: float) -> float:
    path = folder / f"claims-{durable_receives}-{threads}.db"
    backend = SqliteBackend(path, durable_receives=durable_receives)
    service = SQSService(backend)
    url = service.dispatch("CreateQueue", {"QueueName": "q"})["QueueUrl"]
    entries = [{"Id": str(k), "MessageBody": "x" * 100} for k in range(10)]
    for _ in range(2000):
        service.dispatch("SendMessageBatch", {"QueueUrl": url, "Entries": entries})
    done = [0] * threads
    deadline = time.perf_counter() + seconds

    def consume(slot: int) -> None:
        while time.perf_counter() < deadline:
            messages = service.dispatch("ReceiveMessage", {"QueueUrl": url}).get("Messages", [])
            for m in messages:
                service.dispatch(
                    "DeleteMessage", {"QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"]}
                )
                done[slot] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=consume, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    backend.close()
    return sum(done) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dir", type=Path, default=Path(".trainmq") / "bench")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=args.dir))
    seconds = 1.0 if args.quick else 5.0
    try:
        print(f"disk: {file_system_type(folder)}, {fsync_rate(folder):.0f} fsyncs/s")
        print(f"{'consumers':>9} {'claims not fsynced':>19} {'claims fsynced':>15} {'ratio':>6}")
        for threads in (1, 4):
            plain = cycles_per_second(folder, False, threads, seconds)
            durable = cycles_per_second(folder, True, threads, seconds)
            print(f"{threads:>9} {plain:>17.0f}/s {durable:>13.0f}/s {durable / plain:>6.2f}")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
