"""Attacks on grants, each performed as ``alice`` (``*`` on ``a-*``) and checked, as
``admin``, to have been refused *and* to have had no effect.

The grant check and the action must read the same values: a decoy ``QueueUrl``
of a granted queue, a queue URL in the Query path, a hand-built ``TaskHandle``,
a ``DestinationArn``, a ``RedrivePolicy`` target or a planted
``trainmq.SourceQueue`` attribute must not let a key touch a queue it has no
grant for.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trainmq.queue.model import SOURCE_QUEUE
from trainmq.server.app import SQSApp

from .inprocess import ADMIN, ALICE, Client, arn, build_app, closing, url


@pytest.fixture
def app(tmp_path: Path) -> Iterator[SQSApp]:
    yield from closing(build_app(tmp_path))


@pytest.fixture
def admin(app: SQSApp) -> Client:
    """The admin, with b-secret a dead-letter queue of b-main holding one message, and
    alice's a-main (its dead letters go to a-dlq)."""
    client = Client(app, ADMIN)
    for name in ("a-main", "a-dlq", "b-main", "b-secret", "b-dlq"):
        client.ok("CreateQueue", {"QueueName": name})
    policy = json.dumps({"deadLetterTargetArn": arn("b-secret"), "maxReceiveCount": 3})
    client.ok(
        "SetQueueAttributes", {"QueueUrl": url("b-main"), "Attributes": {"RedrivePolicy": policy}}
    )
    policy = json.dumps({"deadLetterTargetArn": arn("a-dlq"), "maxReceiveCount": 3})
    client.ok(
        "SetQueueAttributes", {"QueueUrl": url("a-main"), "Attributes": {"RedrivePolicy": policy}}
    )
    client.ok("SendMessage", {"QueueUrl": url("b-secret"), "MessageBody": "b's secret"})
    return client


@pytest.fixture
def alice(app: SQSApp, admin: Client) -> Client:
    return Client(app, ALICE)


def depth(admin: Client, name: str) -> int:
    attributes = admin.ok(
        "GetQueueAttributes",
        {"QueueUrl": url(name), "AttributeNames": ["ApproximateNumberOfMessages"]},
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def tasks(admin: Client, name: str) -> list[dict[str, Any]]:
    result = admin.ok("ListMessageMoveTasks", {"SourceArn": arn(name), "MaxResults": 10})
    return list(result.get("Results", []))


def exists(admin: Client, name: str) -> bool:
    return admin.json("GetQueueUrl", {"QueueName": name}).status == 200


def assert_b_secret_untouched(admin: Client) -> None:
    assert tasks(admin, "b-secret") == []
    assert depth(admin, "b-secret") == 1
    assert depth(admin, "a-main") == 0


# -- item 1: the check reads what the action acts on ---------------------------------------------
def test_move_task_with_a_decoy_queue_url_is_refused(alice: Client, admin: Client) -> None:
    answer = alice.json(
        "StartMessageMoveTask",
        {"QueueUrl": url("a-main"), "SourceArn": arn("b-secret"), "DestinationArn": arn("a-main")},
    )
    assert answer.status == 400 and answer.code == "InvalidParameterValue"
    assert_b_secret_untouched(admin)


def test_move_task_from_a_queue_without_grant_is_refused(alice: Client, admin: Client) -> None:
    answer = alice.json(
        "StartMessageMoveTask", {"SourceArn": arn("b-secret"), "DestinationArn": arn("a-main")}
    )
    assert answer.status == 403 and answer.code == "AccessDenied"
    assert_b_secret_untouched(admin)


def test_query_path_does_not_stand_in_for_the_source_arn(alice: Client, admin: Client) -> None:
    answer = alice.query(
        {
            "Action": "StartMessageMoveTask",
            "SourceArn": arn("b-secret"),
            "DestinationArn": arn("a-main"),
        },
        path="/000000000000/a-main",
    )
    assert answer.status == 403 and answer.code == "AccessDenied"
    assert_b_secret_untouched(admin)


def test_create_queue_with_a_decoy_queue_url_is_refused(alice: Client, admin: Client) -> None:
    answer = alice.json("CreateQueue", {"QueueUrl": url("a-main"), "QueueName": "b-created"})
    assert answer.status == 400 and answer.code == "InvalidParameterValue"
    by_path = alice.query(
        {"Action": "CreateQueue", "QueueName": "b-created"}, path="/000000000000/a-main"
    )
    # AWS answers CreateQueue sent to a queue's URL with InvalidAction, before any grant check
    assert by_path.status == 400 and by_path.code == "InvalidAction"
    assert not exists(admin, "b-created")


def test_get_queue_url_and_list_move_tasks_need_a_grant_on_the_named_queue(
    alice: Client, admin: Client
) -> None:
    decoy = alice.json("GetQueueUrl", {"QueueUrl": url("a-main"), "QueueName": "b-dlq"})
    assert decoy.status == 400 and b"b-dlq</" not in decoy.body
    for path in ("/", "/000000000000/a-main"):
        answer = alice.query({"Action": "GetQueueUrl", "QueueName": "b-dlq"}, path=path)
        assert answer.status == 403 and answer.code == "AccessDenied"
        assert b"QueueUrl>" not in answer.body
    listed = alice.query(
        {"Action": "ListMessageMoveTasks", "SourceArn": arn("b-secret")},
        path="/000000000000/a-main",
    )
    assert listed.status == 403 and listed.code == "AccessDenied"


def test_a_hand_built_task_handle_cannot_cancel_another_queues_task(
    alice: Client, admin: Client
) -> None:
    for n in range(30):  # at one message a second, the task is still running at the end
        admin.ok("SendMessage", {"QueueUrl": url("b-secret"), "MessageBody": f"m{n}"})
    handle = admin.ok(
        "StartMessageMoveTask",
        {
            "SourceArn": arn("b-secret"),
            "DestinationArn": arn("b-main"),
            "MaxNumberOfMessagesPerSecond": 1,
        },
    )["TaskHandle"]
    task_id = json.loads(base64.b64decode(handle))["taskId"]
    forged = base64.b64encode(
        json.dumps({"taskId": task_id, "sourceArn": arn("a-dlq")}).encode()
    ).decode()
    answer = alice.json("CancelMessageMoveTask", {"TaskHandle": forged})
    assert answer.status == 404 and answer.code == "ResourceNotFoundException"
    honest = alice.json("CancelMessageMoveTask", {"TaskHandle": handle})
    assert honest.status == 403 and honest.code == "AccessDenied"
    assert [t["Status"] for t in tasks(admin, "b-secret")] == ["RUNNING"]


# -- item 2: writes into queues the key cannot write ---------------------------------------------
def test_move_into_a_destination_without_send_grant_is_refused(
    alice: Client, admin: Client
) -> None:
    alice.ok("SendMessage", {"QueueUrl": url("a-dlq"), "MessageBody": "mine"})
    answer = alice.json(
        "StartMessageMoveTask", {"SourceArn": arn("a-dlq"), "DestinationArn": arn("b-main")}
    )
    assert answer.status == 403 and answer.code == "AccessDenied"
    assert tasks(admin, "a-dlq") == []
    assert depth(admin, "b-main") == 0 and depth(admin, "a-dlq") == 1


def test_redrive_policy_into_a_queue_without_send_grant_is_refused(
    alice: Client, admin: Client
) -> None:
    policy = json.dumps({"deadLetterTargetArn": arn("b-dlq"), "maxReceiveCount": 1})
    created = alice.json(
        "CreateQueue", {"QueueName": "a-new", "Attributes": {"RedrivePolicy": policy}}
    )
    assert created.status == 403 and created.code == "AccessDenied"
    assert not exists(admin, "a-new")
    changed = alice.json(
        "SetQueueAttributes", {"QueueUrl": url("a-main"), "Attributes": {"RedrivePolicy": policy}}
    )
    assert changed.status == 403 and changed.code == "AccessDenied"
    attributes = admin.ok(
        "GetQueueAttributes", {"QueueUrl": url("a-main"), "AttributeNames": ["RedrivePolicy"]}
    )["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"] == arn("a-dlq")
    # Into her own queues she may: the check is on the target, not on redrive policies.
    own = json.dumps({"deadLetterTargetArn": arn("a-dlq"), "maxReceiveCount": 1})
    alice.ok("CreateQueue", {"QueueName": "a-new", "Attributes": {"RedrivePolicy": own}})


def plant(client: Client, dead_letter_queue: str, claimed_origin: str) -> None:
    """A message in the dead-letter queue whose trainmq.SourceQueue claims an origin."""
    client.ok(
        "SendMessage",
        {
            "QueueUrl": url(dead_letter_queue),
            "MessageBody": "planted",
            "MessageAttributes": {
                SOURCE_QUEUE: {"DataType": "String", "StringValue": arn(claimed_origin)}
            },
        },
    )


def wait_for_end(admin: Client, name: str) -> dict[str, Any]:
    """The newest move task of ``name`` once it has ended (bounded polling)."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        latest = tasks(admin, name)[0]
        if latest["Status"] not in ("RUNNING", "CANCELLING"):
            return latest
        time.sleep(0.05)
    raise AssertionError(f"the move task of {name} did not end")


def test_a_planted_source_queue_attribute_does_not_redirect_a_redrive(
    alice: Client, admin: Client
) -> None:
    plant(alice, "a-dlq", "b-main")
    # Even the admin's redrive (the operator's "Redrive all") leaves b-main alone: b-main
    # does not dead-letter into a-dlq, so the attribute's claim is not honoured.
    admin.ok("StartMessageMoveTask", {"SourceArn": arn("a-dlq")})
    ended = wait_for_end(admin, "a-dlq")
    assert ended["Status"] == "FAILED"
    assert depth(admin, "b-main") == 0 and depth(admin, "a-dlq") == 1


def test_redrive_to_origins_needs_send_on_every_origin(alice: Client, admin: Client) -> None:
    policy = json.dumps({"deadLetterTargetArn": arn("a-dlq"), "maxReceiveCount": 3})
    admin.ok(
        "SetQueueAttributes", {"QueueUrl": url("b-main"), "Attributes": {"RedrivePolicy": policy}}
    )
    plant(alice, "a-dlq", "b-main")
    answer = alice.json("StartMessageMoveTask", {"SourceArn": arn("a-dlq")})
    assert answer.status == 403 and answer.code == "AccessDenied"
    assert b"b-main" in answer.body
    assert tasks(admin, "a-dlq") == []
    assert depth(admin, "b-main") == 0 and depth(admin, "a-dlq") == 1


def test_redrive_to_her_own_origins_still_works(alice: Client, admin: Client) -> None:
    plant(alice, "a-dlq", "a-main")
    alice.ok("StartMessageMoveTask", {"SourceArn": arn("a-dlq")})
    assert wait_for_end(admin, "a-dlq")["Status"] == "COMPLETED"
    assert depth(admin, "a-main") == 1 and depth(admin, "a-dlq") == 0


# -- members the action does not model ------------------------------------------------------------
def test_members_an_action_does_not_model_are_refused(alice: Client, admin: Client) -> None:
    answer = alice.json(
        "SendMessage", {"QueueUrl": url("a-main"), "MessageBody": "x", "QueueName": "b-main"}
    )
    assert answer.status == 400 and answer.code == "InvalidParameterValue"
    entry = {"Id": "1", "MessageBody": "x", "QueueUrl": url("b-main")}
    batch = alice.json("SendMessageBatch", {"QueueUrl": url("a-main"), "Entries": [entry]})
    assert batch.status == 400 and batch.code == "InvalidParameterValue"
    query = alice.query(
        {"Action": "SendMessage", "QueueUrl": url("a-main"), "MessageBody": "x", "Foo": "1"}
    )
    assert query.status == 400 and query.code == "InvalidParameterValue"
    assert depth(admin, "a-main") == 0 and depth(admin, "b-main") == 0


def test_the_member_table_is_botocores_model() -> None:
    import botocore.session

    from trainmq.server.authorize import ENTRY_MEMBERS, MODELLED_MEMBERS

    model = botocore.session.get_session().get_service_model("sqs")
    for action in model.operation_names:
        members = model.operation_model(action).input_shape.members
        assert MODELLED_MEMBERS[action] == frozenset(members), action
        if action in ENTRY_MEMBERS:
            entry = members["Entries"].member
            assert ENTRY_MEMBERS[action] == frozenset(entry.members), action


# -- item 11: ListQueues filters before paging ---------------------------------------------------
def test_list_queues_pages_never_reveal_hidden_names(alice: Client, admin: Client) -> None:
    hidden = alice.ok("ListQueues", {"QueueNamePrefix": "b", "MaxResults": 1})
    assert hidden == {}
    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        page = alice.ok("ListQueues", {"MaxResults": 1, **({"NextToken": token} if token else {})})
        seen += page.get("QueueUrls", [])
        token = page.get("NextToken")
        if token is None:
            break
    assert seen == [url("a-dlq"), url("a-main")]
    everything = admin.ok("ListQueues", {})["QueueUrls"]
    assert len(everything) == 5


def test_a_receipt_handle_of_another_queue_deletes_nothing(alice: Client, admin: Client) -> None:
    """A guard, not a regression: handles are bound to their queue in the engine."""
    received = admin.ok("ReceiveMessage", {"QueueUrl": url("b-secret"), "VisibilityTimeout": 60})
    handle = received["Messages"][0]["ReceiptHandle"]
    alice.json("DeleteMessage", {"QueueUrl": url("a-main"), "ReceiptHandle": handle})
    alice.json(
        "ChangeMessageVisibility",
        {"QueueUrl": url("a-main"), "ReceiptHandle": handle, "VisibilityTimeout": 0},
    )
    attributes = admin.ok(
        "GetQueueAttributes", {"QueueUrl": url("b-secret"), "AttributeNames": ["All"]}
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"
