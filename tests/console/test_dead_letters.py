"""The dead-letter page: reasons and origins, redrive of selected messages and of all."""

from __future__ import annotations

import re
import time

from .conftest import Setup
from .seed import seed_queues


def _dead_ids(page: str) -> dict[str, str]:
    """Message id -> the dead-letter line shown for it."""
    found = {}
    for article in re.findall(r'<article class="message".*?</article>', page, re.S):
        message_id = re.search(r'name="message" value="([^"]+)"', article)
        reason = re.search(r'<p class="dead">(.*?)</p>', article, re.S)
        assert message_id is not None and reason is not None
        found[message_id.group(1)] = re.sub(r"<[^>]+>", "", reason.group(1))
    return found


def _depth(setup: Setup, url: str) -> int:
    values = setup.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(values["ApproximateNumberOfMessages"])


def test_dead_letter_page_shows_reasons_and_origins(console: Setup) -> None:
    seed_queues(console.sqs)
    page = console.browser.get("/dlq/train-requests-dlq")
    assert page.status == 200
    assert (
        'Dead letters of <a href="/console/queues/train-requests">train-requests</a>' in page.text
    )
    lines = sorted(_dead_ids(page.text).values())
    assert lines == [
        "Dead-letter reason: received more than maxReceiveCount times (from train-requests)",
        "Dead-letter reason: received more than maxReceiveCount times (from train-requests)",
        "Dead-letter reason: schema_version 7 is not supported (this trainmq reads 1) "
        "(from train-requests)",
    ]
    assert "No redrive has run on this queue." in page.text


def test_redrive_selected_moves_exactly_those_messages(console: Setup) -> None:
    urls = seed_queues(console.sqs)
    page = console.browser.get("/dlq/train-requests-dlq")
    dead = _dead_ids(page.text)
    chosen = [i for i, line in dead.items() if "schema_version" in line]
    chosen += [next(i for i, line in dead.items() if "maxReceiveCount" in line)]
    before = _depth(console, urls["train"])
    answer = console.browser.post(
        "/dlq/train-requests-dlq/redrive",
        [("mode", "selected"), *[("message", i) for i in chosen], ("message", "gone-id")],
    )
    assert answer.status == 200
    assert "Moved 2 of 3 selected messages." in answer.text
    assert "not moved: not in the queue" in answer.text
    assert _depth(console, urls["dlq"]) == 1
    assert _depth(console, urls["train"]) == before + 2
    back = console.sqs.receive_message(QueueUrl=urls["train"], MaxNumberOfMessages=10)
    assert set(chosen) <= {m["MessageId"] for m in back["Messages"]}


def test_redrive_selected_needs_a_selection(console: Setup) -> None:
    seed_queues(console.sqs)
    answer = console.browser.post("/dlq/train-requests-dlq/redrive", {"mode": "selected"})
    assert answer.status == 400 and "No messages selected" in answer.text
    assert console.browser.post("/dlq/train-requests-dlq/redrive", {"mode": "?"}).status == 400


def test_redrive_all_runs_a_move_task_with_progress(console: Setup) -> None:
    dlq = console.sqs.create_queue(QueueName="train-requests-dlq")["QueueUrl"]
    arn = console.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
    policy = f'{{"deadLetterTargetArn": "{arn["Attributes"]["QueueArn"]}", "maxReceiveCount": 1}}'
    source = console.sqs.create_queue(
        QueueName="train-requests", Attributes={"RedrivePolicy": policy}
    )["QueueUrl"]
    urls = {"dlq": dlq, "train": source}
    for index in range(2):
        console.sqs.send_message(QueueUrl=source, MessageBody=f"poison {index}")
    for _ in range(2):
        console.sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert _depth(console, dlq) == 2
    answer = console.browser.post("/dlq/train-requests-dlq/redrive", {"mode": "all"})
    assert answer.status == 303 and "notice=redrive-started" in answer.location
    deadline = time.monotonic() + 10
    while _depth(console, urls["dlq"]) and time.monotonic() < deadline:
        time.sleep(0.01)  # the move task runs on the engine's thread
    assert _depth(console, urls["dlq"]) == 0
    assert _depth(console, urls["train"]) == 2
    page = console.browser.get("/dlq/train-requests-dlq?notice=redrive-started")
    assert "Redrive started" in page.text
    assert re.search(r'<span class="status completed">COMPLETED</span>', page.text)
    assert '<progress max="2" value="2"' in page.text
