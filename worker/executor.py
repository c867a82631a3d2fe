"""What a worker does with one execution id: claim it, run it, record the result exactly once."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Callable, Collection
from datetime import datetime

import redis

from executioner.metrics import record_run
from executioner.models import Execution, Outcome, Status, utcnow
from executioner.queue import waiting_message_ids
from executioner.runner_protocol import OutputSink
from executioner.settings import Settings
from executioner.store import ExecutionStore
from executioner.streams import RedisOutput
from executioner.worker.active import ActiveExecutions
from executioner.worker.backends.base import LOST_WORKER_REASON, SandboxBackend, SandboxUnavailable

__all__ = [
    "LOST_WORKER_REASON",
    "execute",
    "recover_lost_execution",
    "redispatch_lost_messages",
    "sweep_lost_executions",
]

log = logging.getLogger(__name__)


def execute(
    execution_id: str, store: ExecutionStore, backend: SandboxBackend, settings: Settings, active: ActiveExecutions
) -> str:
    """Run one execution; returns a word saying what happened (for logs and tests)."""
    execution = store.get(execution_id)
    if execution is None:
        return "missing"
    if execution.status.terminal:
        return "already_final"
    if execution.status is Status.running:
        # A redelivered message (Celery restores unacknowledged messages when it loses Redis, too). If this process
        # runs it, it is alive; if nobody holds the lease any more, its worker died mid-run.
        if execution_id in active.held_ids():
            return "duplicate"
        if store.lease_holder(execution_id) is None and recover_lost_execution(store, backend, execution):
            return "lost"
        return "duplicate"
    lease_owner = f"{socket.gethostname()}:{uuid.uuid4().hex[:12]}"
    started_at = utcnow()
    claimed = store.transition(
        execution_id,
        Status.running,
        {"started_at": started_at.isoformat(), "backend": backend.name},
        allowed_from=[Status.queued],
        lease_owner=lease_owner,
        lease_seconds=settings.lease_seconds,
    )
    if not claimed:
        return "duplicate"
    log.info("running execution %s on %s", execution_id, backend.name, extra={"execution_id": execution_id})
    with active.holding(execution_id, lease_owner):  # held until the result is recorded, not just run
        asked_at = time.time()
        # The output goes to the execution's event stream as it comes, and all of it before the result.
        output = RedisOutput(store.redis, execution_id, store.retention_seconds)
        outcome = output.finish(_run(backend, execution, output))
        recorded = _finish_despite_outages(store, execution_id, outcome, settings.store_outage_seconds)
    if recorded:
        _record_timings(store, backend.name, execution, started_at, asked_at, outcome)
    try:
        backend.cleanup(execution_id)
    except Exception:
        log.exception("cleanup of %s failed", execution_id)
    log.info(
        "execution %s ended %s%s",
        execution_id,
        outcome.status,
        "" if recorded else " (already final)",
        extra={"execution_id": execution_id, "status": outcome.status.value},
    )
    return outcome.status.value if recorded else "superseded"


def _finish_despite_outages(store: ExecutionStore, execution_id: str, outcome: Outcome, patience: float) -> bool:
    """Record the result and its artifacts, retrying while Redis is unreachable (restarting, failing over), so a run
    that finished during an outage still ends with its real result. Past `patience` the error propagates: Celery redelivers the
    message and the sweeper resolves the execution."""
    deadline = time.monotonic() + patience
    delay = 0.2
    while True:
        try:
            return store.record_outcome(execution_id, outcome)
        except (redis.ConnectionError, redis.TimeoutError):
            if time.monotonic() + delay > deadline:
                raise
            log.warning("cannot reach the store to record %s; retrying in %.1f s", execution_id, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _record_timings(
    store: ExecutionStore, backend: str, execution: Execution, started_at: datetime, asked_at: float, outcome: Outcome
) -> None:
    """The run's timings for the deployment's histograms; metrics must never fail an execution."""
    wall = (utcnow() - started_at).total_seconds()
    timings = {"queue_wait_seconds": (started_at - execution.created_at).total_seconds()}
    if outcome.duration_ms is not None:
        timings["execution_duration_seconds"] = outcome.duration_ms / 1000
        timings["sandbox_overhead_seconds"] = max(0.0, wall - outcome.duration_ms / 1000)
    if outcome.program_started_at is not None:  # clocks of different nodes may disagree a little: never negative
        timings["sandbox_start_seconds"] = max(0.0, outcome.program_started_at - asked_at)
    try:
        record_run(store.redis, backend, timings)
    except Exception:
        log.warning("could not record the timings of %s", execution.id, exc_info=True)


def _run(backend: SandboxBackend, execution: Execution, output: OutputSink) -> Outcome:
    try:
        return backend.run(execution, output)
    except SandboxUnavailable as exc:
        return Outcome.failure(Status.error, str(exc))
    except Exception as exc:
        log.exception("backend failed for %s", execution.id)
        return Outcome.failure(Status.error, f"the sandbox backend failed: {exc}")


def recover_lost_execution(store: ExecutionStore, backend: SandboxBackend, execution: Execution) -> bool:
    """Resolve a `running` execution nobody holds: harvest its result where the backend still can,
    end it as `error` otherwise. False while its sandbox may still finish by itself."""
    try:
        outcome = backend.recover(execution)
    except Exception as exc:  # noqa: BLE001 - leave it for the next sweep
        log.warning("cannot recover %s yet: %s", execution.id, exc)
        return False
    if outcome is None:
        return False
    recorded = store.record_outcome(execution.id, outcome)
    if recorded:
        backend.cleanup(execution.id)
    return recorded


def sweep_lost_executions(
    store: ExecutionStore, backend: SandboxBackend, running_here: Collection[str] = ()
) -> list[str]:
    """Resolve every `running` execution whose worker's lease has lapsed; returns their ids. `running_here` are the
    caller's own executions: alive whatever their lease says (it lapses while Redis is away; the renewer retakes it)."""
    resolved: list[str] = []
    for execution_id in store.running_ids():
        if execution_id in running_here or store.lease_holder(execution_id) is not None:
            continue
        execution = store.get(execution_id)
        if execution is None:
            store.redis.zrem(store.RUNNING_KEY, store.record_key(execution_id))
            continue
        if execution.status is Status.running and recover_lost_execution(store, backend, execution):
            resolved.append(execution_id)
    return resolved


def redispatch_lost_messages(store: ExecutionStore, send: Callable[[str], None], after_seconds: float) -> list[str]:
    """Send again every execution still `queued` `after_seconds` after it was queued whose message is not waiting in
    the broker: the message went with a Redis crash (taken from the list, not yet noted as unacknowledged) or with a
    worker that could not claim it while Redis was away. A second message is harmless: the claim is a CAS.
    Returns the ids sent again."""
    stale = store.queued_ids_older_than(after_seconds)
    if not stale:
        return []
    waiting = waiting_message_ids(store.redis)
    sent: list[str] = []
    for execution_id in stale:
        if execution_id not in waiting and store.claim_redispatch(execution_id, after_seconds):
            send(execution_id)
            sent.append(execution_id)
    return sent
