"""Message-move tasks on PostgreSQL: redrive a dead-letter queue to its sources or elsewhere.

A task moves the messages that were in the source queue when it started, in
small transactions (each message leaves the source and enters its destination
atomically), honouring MaxNumberOfMessagesPerSecond.  Its progress and status
are rows in ``move_tasks``, so any host can list or cancel it; the process that
started it does the moving.  Finished tasks older than the 14 days SQS lists
them for are removed by the next task started on the same source.
"""

from __future__ import annotations

import uuid

from ...errors import InvalidParameterValue, ResourceNotFoundException
from .. import queue_row
from ..model import MoveTask
from ..rows import TASK_COLUMNS, move_task, origin
from . import queues
from .commit import Connection
from .messages import SEQUENCE_BASE

__all__ = ["cancel", "list_tasks", "move_chunk", "start"]

_KEEP_FINISHED_MS = 14 * 24 * 3600 * 1000


def start(
    conn: Connection,
    source: str,
    destination: str | None,
    max_per_second: int | None,
    now_ms: int,
    source_arn: str,
    is_dead_letter_queue: bool,
) -> str:
    queue = queues.load(conn, source, lock=True)  # one start at a time per source
    if not is_dead_letter_queue:
        raise InvalidParameterValue("Source queue must be configured as a Dead Letter Queue.")
    if destination is not None:
        queues.load(conn, destination)
    running = conn.execute(
        "SELECT 1 FROM move_tasks WHERE source_name = %s AND status IN ('RUNNING', 'CANCELLING')",
        (source,),
    ).fetchone()
    if running is not None:
        raise InvalidParameterValue(
            "There is already a task running. Only one active task is allowed for each "
            f"source queue arn at a given time. ({source_arn})"
        )
    conn.execute(
        "DELETE FROM move_tasks WHERE source_name = %s AND started_at < %s",
        (source, now_ms - _KEEP_FINISHED_MS),
    )
    found = conn.execute(
        "SELECT coalesce(max(id), 0), count(*) FROM messages WHERE queue_id = %s", (queue.id,)
    ).fetchone()
    last_row, to_move = found if found else (0, 0)
    task_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO move_tasks (task_handle, source_name, destination, max_per_second, status, "
        "to_move, started_at, last_row) VALUES (%s, %s, %s, %s, 'RUNNING', %s, %s, %s)",
        (task_id, source, destination, max_per_second, to_move, now_ms, last_row),
    )
    return task_id


def move_chunk(conn: Connection, task_id: str, limit: int, now_ms: int) -> bool:
    """Move up to ``limit`` messages; returns False once the task has ended."""
    task = conn.execute(
        "SELECT source_name, destination, status, last_row FROM move_tasks "
        "WHERE task_handle = %s FOR UPDATE",
        (task_id,),
    ).fetchone()
    if task is None or task[2] != "RUNNING":
        if task is not None and task[2] == "CANCELLING":
            conn.execute(
                "UPDATE move_tasks SET status = 'CANCELLED' WHERE task_handle = %s", (task_id,)
            )
        return False
    source_name, destination_name, _, last_row = task
    source = queues.find(conn, source_name)
    if source is None:
        _fail(conn, task_id, "AWS.SimpleQueueService.NonExistentQueue")
        return False
    rows = conn.execute(
        "SELECT id, dead_letter_source, attributes FROM messages WHERE queue_id = %s "
        "AND id <= %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
        (source.id, last_row, limit),
    ).fetchall()
    sources = None if destination_name else dead_letter_sources(conn, source_name)
    for row_id, recorded_arn, attributes in rows:
        target_name = destination_name or origin(recorded_arn, attributes, sources or set())
        target = queues.find(conn, target_name) if target_name else None
        if target is None:
            _fail(conn, task_id, "AWS.SimpleQueueService.NonExistentQueue")
            return False
        move_row(conn, row_id, target, now_ms)
    conn.execute(
        "UPDATE move_tasks SET moved = moved + %s, last_moved_at = %s WHERE task_handle = %s",
        (len(rows), now_ms, task_id),
    )
    if len(rows) < limit:
        conn.execute(
            "UPDATE move_tasks SET status = 'COMPLETED' WHERE task_handle = %s", (task_id,)
        )
        return False
    return True


def dead_letter_sources(conn: Connection, dead_letter_queue: str) -> set[str]:
    """The queues whose RedrivePolicy targets ``dead_letter_queue`` now."""
    return set(queue_row.dead_letter_sources(queues.all_rows(conn), dead_letter_queue))


def destinations(conn: Connection, source: str) -> list[str]:
    """Every queue a redrive of ``source`` without a destination may write into: the
    sources recorded on its messages and the queues that dead-letter into it now."""
    queue = queues.load(conn, source)
    recorded = {
        str(arn).rsplit(":", 1)[1]
        for (arn,) in conn.execute(
            "SELECT DISTINCT dead_letter_source FROM messages "
            "WHERE queue_id = %s AND dead_letter_source IS NOT NULL",
            (queue.id,),
        ).fetchall()
    }
    return sorted(recorded | dead_letter_sources(conn, source))


def move_row(conn: Connection, row_id: int, target: queues.QueueRow, now_ms: int) -> None:
    """Move one message row into ``target`` as a fresh message: visible now, never
    received, no longer dead-lettered."""
    sequence = None
    if target.fifo:
        found = conn.execute(
            "UPDATE queues SET next_sequence = next_sequence + 1 WHERE id = %s "
            "RETURNING next_sequence",
            (target.id,),
        ).fetchone()
        sequence = str(SEQUENCE_BASE + int(found[0])) if found else None
    conn.execute(
        "UPDATE messages SET queue_id = %s, visible_at = %s, sent_at = %s, receive_count = 0, "
        "received_at = NULL, first_received_at = NULL, receipt_token = NULL, "
        "dead_letter_source = NULL, sequence_number = coalesce(%s, sequence_number) "
        "WHERE id = %s",
        (target.id, now_ms, now_ms, sequence, row_id),
    )


def _fail(conn: Connection, task_id: str, reason: str) -> None:
    conn.execute(
        "UPDATE move_tasks SET status = 'FAILED', failure_reason = %s WHERE task_handle = %s",
        (reason, task_id),
    )


def cancel(conn: Connection, task_id: str) -> int:
    found = conn.execute(
        "SELECT status, moved FROM move_tasks WHERE task_handle = %s FOR UPDATE", (task_id,)
    ).fetchone()
    if found is None or found[0] != "RUNNING":
        raise ResourceNotFoundException("Task does not exist.")
    conn.execute(
        "UPDATE move_tasks SET status = 'CANCELLING' WHERE task_handle = %s", (task_id,)
    )
    return int(found[1])


def list_tasks(conn: Connection, source: str, max_results: int) -> list[MoveTask]:
    queues.load(conn, source)
    rows = conn.execute(
        f"SELECT {TASK_COLUMNS} FROM move_tasks WHERE source_name = %s "
        "ORDER BY started_at DESC, created_order DESC LIMIT %s",
        (source, max_results),
    ).fetchall()
    return [move_task(r) for r in rows]
