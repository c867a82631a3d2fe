"""Celery tasks. Arguments are execution ids only; everything else lives in the store."""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import partial
from typing import Any

from celery import Task, signals

from executioner.queue import RUN_EXECUTION, send_execution
from executioner.settings import Settings
from executioner.store import ExecutionStore
from executioner.worker.active import ActiveExecutions
from executioner.worker.backends.base import SandboxBackend, create_backend
from executioner.worker.celery_app import app
from executioner.worker.executor import execute, redispatch_lost_messages, sweep_lost_executions
from executioner.worker.heartbeat import Heartbeat

log = logging.getLogger(__name__)
EXECUTION_ID = re.compile(r"^[0-9a-f]{32}$")
# the liveness heartbeat rides on the consumer (worker/heartbeat.py)
app.steps["consumer"].add(Heartbeat)


@dataclass(frozen=True)
class WorkerResources:
    """What one worker process holds: its settings, store client, sandbox backend and running executions."""

    settings: Settings
    store: ExecutionStore
    backend: SandboxBackend
    active: ActiveExecutions

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerResources:
        store = ExecutionStore.from_settings(settings)
        backend = create_backend(settings)
        return cls(settings, store, backend, ActiveExecutions(store, backend, settings.lease_seconds))


class ExecutionTask(Task):
    """Celery keeps one instance of a task per worker process: its resources are made there, once, on first use."""

    _resources: WorkerResources | None = None
    _resources_lock = threading.Lock()

    @property
    def resources(self) -> WorkerResources:
        with self._resources_lock:  # the threads pool runs tasks concurrently
            if self._resources is None:
                type(self)._resources = WorkerResources.from_settings(Settings())
            assert self._resources is not None
            return self._resources


@app.task(
    name=RUN_EXECUTION, base=ExecutionTask, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def run_execution(self: ExecutionTask, execution_id: str) -> str:
    if not isinstance(execution_id, str) or not EXECUTION_ID.match(execution_id):
        log.error("ignoring a task with a malformed execution id")
        return "invalid"
    resources = self.resources
    return execute(execution_id, resources.store, resources.backend, resources.settings, resources.active)


@signals.worker_ready.connect
def start_sweeper(**_kwargs: Any) -> None:
    """Resolve executions whose worker died, so none stays `running` forever."""
    resources: WorkerResources = run_execution.resources
    resources.active.start()

    def loop() -> None:
        stop = threading.Event()
        while not stop.wait(resources.settings.sweep_interval_seconds):
            try:
                running_here = resources.active.held_ids()
                for execution_id in sweep_lost_executions(resources.store, resources.backend, running_here):
                    log.warning("execution %s lost its worker; ended as error", execution_id)
                for execution_id in redispatch_lost_messages(
                    resources.store, partial(send_execution, app), resources.settings.redispatch_after_seconds
                ):
                    log.warning("execution %s was queued but its message was lost; sent again", execution_id)
                if dropped := resources.store.reconcile_indexes():
                    log.warning("dropped %d index entries of records that expired", dropped)
                if stripped := resources.store.drop_expired_payloads():
                    log.info("dropped the code, input and output of %d executions past their retention", stripped)
            except Exception:
                log.exception("sweep failed")

    threading.Thread(target=loop, name="sweeper", daemon=True).start()
