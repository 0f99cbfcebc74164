"""What the server acknowledged survives ``kill -9`` of the server."""

from __future__ import annotations

from pathlib import Path

from .conftest import StartServer

SINGLE = 30
BATCHES = 3


def test_acknowledged_sends_survive_sigkill(start_server: StartServer, tmp_path: Path) -> None:
    db = tmp_path / "durable.db"
    first = start_server(db=db)
    client = first.client()
    url = client.create_queue(QueueName="durable")["QueueUrl"]
    acknowledged: dict[str, str] = {}
    for number in range(SINGLE):
        body = f"single-{number}"
        acknowledged[client.send_message(QueueUrl=url, MessageBody=body)["MessageId"]] = body
    for batch in range(BATCHES):
        entries = [{"Id": f"e{i}", "MessageBody": f"batch-{batch}-{i}"} for i in range(10)]
        result = client.send_message_batch(QueueUrl=url, Entries=entries)
        assert len(result["Successful"]) == 10
        bodies = {entry["Id"]: entry["MessageBody"] for entry in entries}
        acknowledged.update({ok["MessageId"]: bodies[ok["Id"]] for ok in result["Successful"]})
    # One message received before the crash: its visibility timeout of 0 makes it visible again.
    client.receive_message(QueueUrl=url, VisibilityTimeout=0)

    first.kill()
    assert first.process.returncode == -9

    second = start_server(db=db)
    client = second.client()
    url = client.get_queue_url(QueueName="durable")["QueueUrl"]
    assert url.startswith(second.url)
    depth = client.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == str(len(acknowledged))

    received: dict[str, str] = {}
    for _ in range(len(acknowledged) + 1):
        messages = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300
        ).get("Messages", [])
        if not messages:
            break
        received.update({m["MessageId"]: m["Body"] for m in messages})
    assert received == acknowledged
