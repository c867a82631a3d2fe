"""Celery tasks. Arguments are execution ids only; everything else lives in the store."""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache

from celery import signals

from executioner.settings import get_settings
from executioner.store import ExecutionStore
from executioner.worker.active import ActiveExecutions
from executioner.worker.backends.base import create_backend
from executioner.worker.celery_app import RUN_EXECUTION, app
from executioner.worker.executor import execute, sweep_lost_executions

log = logging.getLogger(__name__)
EXECUTION_ID = re.compile(r"^[0-9a-f]{32}$")


@lru_cache
def store() -> ExecutionStore:
    settings = get_settings()
    return ExecutionStore.from_url(settings.redis_url, settings.retention_seconds)


@lru_cache
def backend():
    return create_backend(get_settings())


@lru_cache
def active() -> ActiveExecutions:
    return ActiveExecutions(store(), backend(), get_settings().lease_seconds)


@app.task(name=RUN_EXECUTION, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_execution(execution_id: str) -> str:
    if not isinstance(execution_id, str) or not EXECUTION_ID.match(execution_id):
        log.error("ignoring a task with a malformed execution id")
        return "invalid"
    return execute(execution_id, store(), backend(), get_settings(), active())


@signals.worker_ready.connect
def start_sweeper(**_kwargs) -> None:
    """Resolve executions whose worker died, so none stays `running` forever."""
    active().start()
    interval = get_settings().sweep_interval_seconds

    def loop() -> None:
        stop = threading.Event()
        while not stop.wait(interval):
            try:
                for execution_id in sweep_lost_executions(store(), backend()):
                    log.warning("execution %s lost its worker; ended as error", execution_id)
            except Exception:  # noqa: BLE001 - Redis hiccups must not kill the sweeper
                log.exception("sweep failed")

    threading.Thread(target=loop, name="sweeper", daemon=True).start()
