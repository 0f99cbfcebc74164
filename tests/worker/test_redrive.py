"""What a worker dead-letters itself can be redriven to its source like any DLQ message."""

from __future__ import annotations

import json

from tests.worker.conftest import Env, counts, drain, make_queue, send, wait_for


def test_a_move_task_sends_permanent_failures_back_to_their_source(env: Env) -> None:
    with env.client() as sqs:
        url = make_queue(sqs, "jobs", max_receives=3)
        dlq = url.replace("/jobs", "/jobs-dlq")
        send(sqs, url, [{"n": 1, "do": "raise_permanent", "reason": "bad input"}])
        worker = env.start("scripted", "jobs", "--timeout", "5")
        wait_for(lambda: counts(sqs, dlq)[0] == 1, what="the copy in the DLQ")
        worker.terminate()
        (copy,) = drain(sqs, dlq)
        assert copy["MessageAttributes"]["trainmq.SourceQueue"]["StringValue"].endswith(":jobs")
        sqs.change_message_visibility(
            QueueUrl=dlq, ReceiptHandle=copy["ReceiptHandle"], VisibilityTimeout=0
        )
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sqs.start_message_move_task(SourceArn=dlq_arn)  # no destination: back to the source

        def finished() -> bool:
            tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
            return bool(tasks) and tasks[0]["Status"] == "COMPLETED"

        wait_for(finished, what="the move task to complete")
        assert counts(sqs, dlq) == (0, 0)
        (back,) = drain(sqs, url)
    assert json.loads(back["Body"])["n"] == 1
