"""Execution records made the way the API makes them, for tests that drive the store directly."""

from __future__ import annotations

from executioner.models import Execution, Limits
from executioner.store import ExecutionStore


def new_record(store: ExecutionStore, owner: str = "anonymous", code: str = "print(1)") -> Execution:
    execution = Execution.new(code=code, limits=Limits(timeout_seconds=5, memory_mb=128), backend="local", owner=owner)
    store.create(execution)
    return execution
