"""The one way an execution enters the system, used by the API and the operator alike."""

from __future__ import annotations

import logging

from executioner.models import Execution, Limits, Status
from executioner.queue import ExecutionQueue
from executioner.settings import Settings
from executioner.store import CapReached, Caps, ExecutionStore

log = logging.getLogger(__name__)


class EnqueueFailed(RuntimeError):
    """The broker did not take the execution; it was recorded as `error`."""


class CapRefused(RuntimeError):
    """A cap refused the execution; nothing was stored."""

    def __init__(self, reached: CapReached):
        super().__init__(f"{reached.cap} ({reached.current})")
        self.reached = reached


def submit(
    store: ExecutionStore,
    queue: ExecutionQueue,
    settings: Settings,
    *,
    owner: str,
    code: str,
    stdin: str,
    limits: Limits,
    caps: Caps | None = None,
) -> Execution:
    """Record a new execution (atomically with the caps' check) and queue it."""
    execution = Execution.new(code=code, stdin=stdin, limits=limits, backend=settings.backend, owner=owner)
    reached = store.create(execution, caps or Caps())
    if reached is not None:
        raise CapRefused(reached)
    try:
        queue.enqueue(execution.id)
    except Exception as exc:
        log.exception("could not enqueue %s", execution.id)
        store.finish(execution.id, Status.error, {"error": "the execution could not be queued"})
        raise EnqueueFailed(str(exc)) from exc
    return execution
