"""Console paths that write into other queues, attacked as ``alice`` (``*`` on ``a-*``)
and checked afterwards to have had no effect; the legitimate paths still work.

"Redrive all" and the attribute form's dead-letter queue (``dlq=``) write into
queues other than the one on the page: the key needs SendMessage on each.  A
``trainmq.SourceQueue`` attribute is client-settable, so a redrive honours it
only for a queue that really dead-letters into the page's queue.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trainmq.queue.model import SOURCE_QUEUE
from trainmq.server.auth import AccessKey, Credentials, Grant

from .conftest import ADMIN, Setup, _setup

ALICE = AccessKey("alice", "AKIDALICE", "alice-secret", (Grant(("*",), ("a-*",)),))
ARN = "arn:aws:sqs:us-east-1:000000000000:{}"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Setup]:
    """Queues a-main (dead letters to a-dlq), a-dlq, b-main and b-dlq; nobody signed in."""
    keys = {key.access_key_id: key for key in (ADMIN, ALICE)}
    for setup in _setup(tmp_path, Credentials(keys)):
        for name in ("a-main", "a-dlq", "b-main", "b-dlq"):
            setup.sqs.create_queue(QueueName=name)
        redrive(setup, "a-main", "a-dlq")
        yield setup


def url(setup: Setup, name: str) -> str:
    return str(setup.sqs.get_queue_url(QueueName=name)["QueueUrl"])


def redrive(setup: Setup, source: str, dead_letter_queue: str) -> None:
    policy = json.dumps(
        {"deadLetterTargetArn": ARN.format(dead_letter_queue), "maxReceiveCount": 3}
    )
    setup.sqs.set_queue_attributes(
        QueueUrl=url(setup, source), Attributes={"RedrivePolicy": policy}
    )


def plant(setup: Setup, dead_letter_queue: str, claimed_origin: str) -> None:
    setup.sqs.send_message(
        QueueUrl=url(setup, dead_letter_queue),
        MessageBody="planted",
        MessageAttributes={
            SOURCE_QUEUE: {"DataType": "String", "StringValue": ARN.format(claimed_origin)}
        },
    )


def depth(setup: Setup, name: str) -> int:
    values = setup.sqs.get_queue_attributes(QueueUrl=url(setup, name), AttributeNames=["All"])
    return int(values["Attributes"]["ApproximateNumberOfMessages"])


def tasks(setup: Setup, name: str) -> list[dict[str, Any]]:
    found = setup.sqs.list_message_move_tasks(SourceArn=ARN.format(name), MaxResults=10)
    return list(found.get("Results", []))


def ended(setup: Setup, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        latest = tasks(setup, name)[0]
        if latest["Status"] not in ("RUNNING", "CANCELLING"):
            return latest
        time.sleep(0.05)
    raise AssertionError(f"the move task of {name} did not end")


def signed_in(setup: Setup, key: AccessKey) -> Any:
    browser = setup.new_browser()
    assert browser.sign_in(key).status == 303
    return browser


def test_redrive_all_needs_send_on_every_origin(guarded: Setup) -> None:
    redrive(guarded, "b-main", "a-dlq")  # the admin lets b-main dead-letter into a-dlq
    plant(guarded, "a-dlq", "b-main")
    answer = signed_in(guarded, ALICE).post("/dlq/a-dlq/redrive", {"mode": "all"})
    assert answer.status == 403 and "SendMessage on queue b-main" in answer.text
    assert tasks(guarded, "a-dlq") == []
    assert depth(guarded, "b-main") == 0 and depth(guarded, "a-dlq") == 1


def test_redrive_all_of_her_own_queue_still_works(guarded: Setup) -> None:
    plant(guarded, "a-dlq", "a-main")
    answer = signed_in(guarded, ALICE).post("/dlq/a-dlq/redrive", {"mode": "all"})
    assert answer.status == 303 and "notice=redrive-started" in answer.location
    assert ended(guarded, "a-dlq")["Status"] == "COMPLETED"
    assert depth(guarded, "a-main") == 1


def test_an_operators_redrive_all_ignores_a_planted_origin(guarded: Setup) -> None:
    plant(guarded, "a-dlq", "b-main")  # b-main does not dead-letter into a-dlq
    answer = signed_in(guarded, ADMIN).post("/dlq/a-dlq/redrive", {"mode": "all"})
    assert answer.status == 303
    assert ended(guarded, "a-dlq")["Status"] == "FAILED"
    assert depth(guarded, "b-main") == 0 and depth(guarded, "a-dlq") == 1


def test_an_operators_redrive_selected_ignores_a_planted_origin(guarded: Setup) -> None:
    plant(guarded, "a-dlq", "b-main")
    admin = signed_in(guarded, ADMIN)
    page = admin.get("/dlq/a-dlq")
    chosen = re.findall(r'name="message" value="([^"]+)"', page.text)
    assert len(chosen) == 1
    answer = admin.post("/dlq/a-dlq/redrive", [("mode", "selected"), ("message", chosen[0])])
    assert answer.status == 200 and "Moved 0 of 1 selected messages." in answer.text
    assert depth(guarded, "b-main") == 0 and depth(guarded, "a-dlq") == 1


def test_attribute_form_cannot_point_dead_letters_at_a_queue_without_send(
    guarded: Setup,
) -> None:
    alice = signed_in(guarded, ALICE)
    answer = alice.post("/queues/a-main/attributes", {"dlq": "b-dlq", "max_receives": "2"})
    assert answer.status == 403 and "SendMessage on queue b-dlq" in answer.text
    values = guarded.sqs.get_queue_attributes(
        QueueUrl=url(guarded, "a-main"), AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    assert json.loads(values["RedrivePolicy"])["deadLetterTargetArn"] == ARN.format("a-dlq")
    # Her own dead-letter queue she may choose.
    mine = alice.post("/queues/a-main/attributes", {"dlq": "a-dlq", "max_receives": "5"})
    assert mine.status == 303
