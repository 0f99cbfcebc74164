"""Run pages a user can find and trust: by run id, an empty store named, figures that agree
with the demo's summary."""

from __future__ import annotations

import re
import time

from trainmq.training.messages import TrainingEvent
from trainmq.training.runs import RunRegistry

from .conftest import Setup
from .seed import seed_run


def test_a_run_page_opens_by_run_id_too(console: Setup) -> None:
    seed_run(console.store, "r-7", time.time())
    page = console.browser.get("/runs/r-7")
    assert page.status == 200 and "<h1>Run r-7</h1>" in page.text
    assert console.browser.get("/runs/r-8").status == 404


def test_an_empty_list_names_the_store(console: Setup) -> None:
    page = console.browser.get("/runs")
    assert page.status == 200
    assert f"No training runs in the store <code>{console.store.address}</code> yet" in page.text


def test_a_duplicate_that_attached_is_not_a_redelivery(console: Setup) -> None:
    key = seed_run(console.store, "r-9", time.time())  # attempt 1 killed, attempt 2 resumed
    RunRegistry(console.store).record_event(
        key,
        10_000,
        TrainingEvent(run_id="r-9", event="attached", attempt=2, step=0, message="duplicate"),
    )
    page = console.browser.get("/runs/r-9")
    assert "2 (1 redelivered, 1 resumed;\n1 duplicate request attached)" in page.text


def test_the_list_shows_the_final_losses_the_summary_shows(console: Setup) -> None:
    now = time.time()
    registry = RunRegistry(console.store)
    registry.register("r-1", "k-1", "{}", now - 60)
    registry.acquire("k-1", now - 60, "worker/1", stale_after=120)

    def event(seq: int, kind: str, **fields: object) -> None:
        fields = {"run_id": "r-1", "event": kind, "attempt": 1, "step": 100, **fields}
        registry.record_event("k-1", seq, TrainingEvent.model_validate(fields))

    event(1, "checkpoint", val_loss=3.25, checkpoint_uri=f"{console.store.address}/c")
    event(2, "completed", train_loss=2.5)
    event(3, "evaluated", val_loss=2.75)  # the evaluate stage: other batches, another figure
    registry.complete("k-1", {"run_id": "r-1", "train_loss": 2.5, "val_loss": 3.125})
    page = console.browser.get("/runs")
    [row] = re.findall(r'<tr><th scope="row">.*?</tr>', page.text, re.S)
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert cells[1:3] == ["2.5000", "3.1250"]  # train, val: the completion's, as the summary's
