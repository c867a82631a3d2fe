"""The Celery application shared by the API and the operator (to enqueue) and the worker (to run)."""

from __future__ import annotations

from functools import lru_cache

from celery import Celery

from executioner.settings import get_settings
from executioner.worker.celery_config import celery_config

RUN_EXECUTION = "executioner.run_execution"


@lru_cache
def celery_for(redis_url: str) -> Celery:
    """One Celery app per broker, configured from the settings in force when first asked for."""
    celery = Celery("executioner")
    celery.config_from_object(celery_config(get_settings().model_copy(update={"redis_url": redis_url})))
    celery.conf.imports = ["executioner.worker.tasks"]  # loaded by workers only; others enqueue by name
    return celery


# What `celery -A executioner.worker.celery_app worker` runs.
app = celery_for(get_settings().redis_url)


def enqueue(execution_id: str) -> None:
    # The task id is the execution id, so the broker and the store name the same thing.
    celery_for(get_settings().redis_url).send_task(RUN_EXECUTION, args=[execution_id], task_id=execution_id)
