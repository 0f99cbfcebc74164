"""A process that runs the train handler on one record and prints its answer (fencing tests)."""

from __future__ import annotations

import json
import sys

from trainmq.training import handlers

if __name__ == "__main__":
    body, message_id = sys.argv[1], sys.argv[2]
    record = {"messageId": message_id, "body": body}
    try:
        answer = handlers.train({"Records": [record]}, None)
    except Exception as exc:  # the test reads what happened, whatever it was
        answer = {"raised": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(answer), flush=True)
