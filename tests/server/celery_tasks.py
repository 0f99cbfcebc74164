"""A Celery app whose broker is ``trainmq serve``, for the Celery test's worker process.

The worker imports this module (``celery -A tests.server.celery_tasks worker``);
the broker URL and the output file come from the environment the test sets.
"""

from __future__ import annotations

import os

from celery import Celery

BROKER_ENV = "TRAINMQ_TEST_BROKER_URL"
OUTPUT_ENV = "TRAINMQ_TEST_OUTPUT"
QUEUE_ENV = "TRAINMQ_TEST_QUEUE"


def make_app(broker_url: str, queue: str) -> Celery:
    app = Celery("trainmq_celery_test", broker=broker_url)
    app.conf.update(
        broker_transport_options={
            "region": "us-east-1",
            "is_secure": False,
            "wait_time_seconds": 1,
            "polling_interval": 0.1,
        },
        broker_connection_retry_on_startup=True,
        task_default_queue=queue,
        task_ignore_result=True,
        worker_prefetch_multiplier=4,
        worker_hijack_root_logger=False,
    )
    return app


app = make_app(
    os.environ.get(BROKER_ENV, "sqs://x:x@127.0.0.1:1"), os.environ.get(QUEUE_ENV, "celery")
)


@app.task(name="trainmq_test.record")
def record(number: int) -> int:
    """Append ``number`` to the output file: the test counts the lines."""
    with open(os.environ[OUTPUT_ENV], "a", encoding="utf-8") as output:
        output.write(f"{number}\n")
    return number
