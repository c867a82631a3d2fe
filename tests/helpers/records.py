"""Execution records made the way the API makes them, for tests that drive the store directly."""

from __future__ import annotations

import uuid

from executioner.models import Execution, Limits, Status
from executioner.store import ExecutionStore, utcnow


def new_record(store: ExecutionStore, owner: str = "anonymous", code: str = "print(1)") -> Execution:
    execution = Execution(
        id=uuid.uuid4().hex, status=Status.queued, created_at=utcnow(), backend="local", owner=owner,
        limits=Limits(timeout_seconds=5, memory_mb=128), code=code,
    )
    store.create(execution)
    return execution
