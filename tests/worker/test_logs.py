"""What a worker tells its operator: tracebacks, JSON lines, /health, the visibility warning."""

from __future__ import annotations

import json
import urllib.request

from tests.server.conftest import free_port
from tests.worker.conftest import Env, make_queue, wait_for


def test_json_log_traceback_health_and_visibility_warning(env: Env) -> None:
    port = free_port()
    with env.client() as sqs:
        url = make_queue(sqs, "logged", visibility=30, max_receives=3)
        sent = sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 7, "do": "raise"}))
        worker = env.start(
            "scripted", "logged", "--timeout", "20", "--log-format", "json",
            "--metrics-port", str(port), "--metrics-host", "127.0.0.1",
        )

        def entries() -> list[dict[str, object]]:
            return [json.loads(line) for line in worker.output().splitlines() if line.strip()]

        failed = wait_for(
            lambda: [e for e in entries() if e["level"] == "ERROR" and "raised" in str(e)],
            what="the handler's traceback in the log",
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            assert answer.status == 200 and json.load(answer) == {"status": "ok"}
    [error] = failed
    message = str(error["message"])
    assert "Traceback (most recent call last)" in message
    assert "tests/worker/handlers.py" in message
    assert "RuntimeError: handler failed on 7" in message
    assert sent["MessageId"] in message and error["queue"] == "logged"
    warnings = [e for e in entries() if e["level"] == "WARNING" and "visibility" in str(e)]
    assert warnings[0]["message"].startswith(
        "visibility timeout 30 s is less than 6 × the function timeout 20 s = 120 s"  # noqa: RUF001
    )
