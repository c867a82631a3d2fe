"""The execution queue (Celery on Redis): its configuration and enqueueing, shared by every component.

Producers (the API, the operator) send the task by name, so they never import the worker; the worker's
Celery app (executioner.worker.celery_app) consumes with the same configuration.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from celery import Celery

from executioner.settings import Settings

QUEUE = "executioner"
RUN_EXECUTION = "executioner.run_execution"


def celery_config(settings: Settings) -> dict[str, Any]:
    """One dict, JSON only, at-least-once delivery made safe by the store's compare-and-set."""
    longest_task = settings.longest_task_seconds
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        # Unacknowledged messages come back only after this long: keep it well past the longest execution.
        "broker_transport_options": {"visibility_timeout": int(longest_task * 4) + 600},
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "task_default_queue": QUEUE,
        # Acknowledge after the run; a lost worker's message is delivered again, and the
        # execution record (not Celery) decides whether anything still needs doing.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Executions mostly wait on a sandbox: threads keep the worker small and fast.
        "worker_pool": "threads",
        "worker_concurrency": settings.worker_concurrency,
        # A backstop only: the thread pool cannot interrupt a task, so each backend enforces the
        # execution's own deadline (the runner's timer, the worker's wait, the Job's activeDeadlineSeconds).
        "task_time_limit": int(longest_task) + 60,
        "worker_send_task_events": False,
        "worker_hijack_root_logger": False,
    }


def send_execution(celery: Celery, execution_id: str) -> None:
    # The task id is the execution id, so the broker and the store name the same thing.
    celery.send_task(RUN_EXECUTION, args=[execution_id], task_id=execution_id)


def waiting_message_ids(client: redis.Redis) -> set[str]:
    """Ids of the executions with a message waiting in the broker's queue (kombu's Redis transport keeps one list
    per queue, the task id in each message's headers). Messages a worker has taken are not in it."""
    ids: set[str] = set()
    for raw in client.lrange(QUEUE, 0, -1):
        try:
            task_id = json.loads(raw)["headers"]["id"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(task_id, str):
            ids.add(task_id)
    return ids


class ExecutionQueue:
    """Sends executions to the workers by task name."""

    def __init__(self, settings: Settings):
        self.celery = Celery("executioner", set_as_current=False)
        self.celery.config_from_object(celery_config(settings))

    def enqueue(self, execution_id: str) -> None:
        send_execution(self.celery, execution_id)

    def close(self) -> None:
        self.celery.close()
