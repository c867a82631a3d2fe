"""The Celery application shared by the API (to enqueue) and the worker (to run)."""

from __future__ import annotations

from celery import Celery

from executioner.settings import get_settings
from executioner.worker.celery_config import celery_config

RUN_EXECUTION = "executioner.run_execution"

app = Celery("executioner")
app.config_from_object(celery_config(get_settings()))
app.conf.imports = ["executioner.worker.tasks"]  # loaded by workers only; the API enqueues by name


def enqueue(execution_id: str) -> None:
    # The task id is the execution id, so the broker and the store name the same thing.
    app.send_task(RUN_EXECUTION, args=[execution_id], task_id=execution_id)
