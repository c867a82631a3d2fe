"""The one way an execution enters the system, used by the API and the operator alike.

Everything a deployment bounds is checked here and nowhere else: the request against the deployment's settings
(bounds.py: limits, runtime, files, sizes in bytes), the store's memory high-water mark, the owner's rate limit, and
the caps the store checks atomically as it creates the record (global queue, the owner's active executions and stored
bytes).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from executioner.admission import Admission, Refusal, caps_for, refusal_for_cap
from executioner.bounds import FileTooLarge, InvalidSubmission, RequestBounds, TooLarge, invalid_file
from executioner.models import Execution, Limits, Status
from executioner.queue import ExecutionQueue
from executioner.settings import Settings
from executioner.store import ExecutionStore

__all__ = [
    "EnqueueFailed",
    "FileTooLarge",
    "InvalidSubmission",
    "Refused",
    "RequestBounds",
    "Submitter",
    "TooLarge",
    "invalid_file",
]

log = logging.getLogger(__name__)


class Refused(RuntimeError):
    """Admission said not now (rate limit, a cap, a full store); nothing was stored."""

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.detail)
        self.refusal = refusal


class EnqueueFailed(RuntimeError):
    """The broker did not take the execution; it was recorded as `error`."""


class Submitter:
    """Checks and submits executions for one deployment (its settings, store, queue and admission)."""

    def __init__(self, store: ExecutionStore, queue: ExecutionQueue, settings: Settings, admission: Admission):
        self.store = store
        self.queue = queue
        self.settings = settings
        self.admission = admission
        self.bounds = RequestBounds(settings)
        self.validate = self.bounds.validate

    def submit(
        self,
        *,
        owner: str,
        code: str,
        stdin: str = "",
        limits: Mapping[str, Any] | None = None,
        runtime: str = "python",
        files: Sequence[Mapping[str, Any]] | None = None,
        source: str | None = None,
        refusal_subject: str = "this key",
    ) -> Execution:
        """Check, admit, record (atomically with the caps' check) and queue a new execution.
        Raises InvalidSubmission (or TooLarge), Refused or EnqueueFailed; `refusal_subject` names the owner in
        refusals ("this key", "namespace team-a")."""
        request, size = self.validate(code, stdin, limits or {}, runtime, files)
        refusal = self.admission.check(owner, incoming_bytes=size)
        if refusal:
            raise Refused(refusal)
        execution = Execution.new(
            code=request.code,
            stdin=request.stdin,
            runtime=request.runtime,
            files=request.files,
            limits=Limits.model_validate(request.limits.model_dump()),
            backend=self.settings.backend,
            owner=owner,
            source=source,
        )
        reached = self.store.create(execution, caps_for(self.settings))
        if reached is not None:
            raise Refused(refusal_for_cap(self.settings, reached, refusal_subject))
        try:
            self.queue.enqueue(execution.id)
        except Exception as exc:
            log.exception("could not enqueue %s", execution.id)
            self.store.finish(execution.id, Status.error, {"error": "the execution could not be queued"})
            raise EnqueueFailed(str(exc)) from exc
        return execution
