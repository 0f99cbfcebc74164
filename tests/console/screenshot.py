"""Take the README's console screenshots: ``python -m tests.console.screenshot docs``.

Serves a realistic state in-process (queues with five minutes of traffic, a
dead-letter queue, training runs) and photographs it with the same headless
Chromium the browser tests use.
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from trainmq.clock import FakeClock
from trainmq.console import mount_console
from trainmq.server.run import ServerConfig, build_app
from trainmq.server.traffic import Traffic
from trainmq.store import LocalStore
from trainmq.training.runs import key_hash

from ..server.conftest import free_port, sqs_client
from .seed import seed_queues, seed_run
from .test_browser import CHROMIUM_ARGS, chromium_path

#: Messages per 10 s bucket: (sent, received, deleted) around which each queue varies.
TRAFFIC = {
    "prepare-requests": (40, 36, 35),
    "train-requests": (3, 4, 2),
    "eval-requests": (6, 6, 6),
    "train-requests-dlq": (0, 0, 0),
}


def _traffic(now: float) -> Traffic:
    clock = FakeClock(now - 300)
    traffic = Traffic(clock)
    rng = random.Random(7)
    for bucket in range(30):
        clock.advance(10)
        for queue, (sent, received, deleted) in TRAFFIC.items():
            wave = 1 + 0.6 * ((bucket % 12) / 12)
            traffic.record(queue, "sent", int(sent * wave * rng.uniform(0.7, 1.3)))
            traffic.record(queue, "received", int(received * wave * rng.uniform(0.7, 1.3)))
            traffic.record(queue, "deleted", int(deleted * wave * rng.uniform(0.7, 1.3)))
        if bucket in (17, 18):
            traffic.record("train-requests-dlq", "sent", 2)
    return traffic


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        port = free_port()
        app = build_app(ServerConfig(port=port, db=root / "queues.db"))
        app.traffic = _traffic(time.time())
        store = LocalStore(root / "store")
        mount_console(app, store)
        server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        try:
            seed_queues(sqs_client(url))
            now = time.time()
            seed_run(store, "r-6", now - 4 * 3600, steps=1000, reached=1000, killed_at=None)
            key = seed_run(store, "r-7", now - 600)
            seed_run(store, "r-8", now, steps=3000, reached=1180, finished=False)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium_path(), args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1200, "height": 460})
                page.goto(url + "/console/")
                page.screenshot(path=str(out / "console-queues.png"))
                page.set_viewport_size({"width": 1200, "height": 1000})
                page.goto(f"{url}/console/runs/{key_hash(key)}")
                page.screenshot(path=str(out / "console-run.png"))
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            app.service.backend.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
