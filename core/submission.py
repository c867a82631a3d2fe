"""The one way an execution enters the system, used by the API and the operator alike.

Everything a deployment bounds is checked here and nowhere else: the limits against the deployment's settings, the
sizes of code and input in bytes, the store's memory high-water mark, the owner's rate limit, and the caps the store
checks atomically as it creates the record (global queue, the owner's active executions and stored bytes).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from executioner.admission import Admission, Refusal, caps_for, refusal_for_cap
from executioner.models import Execution, ExecutionCreateBase, Limits, Status, execution_create_model
from executioner.queue import ExecutionQueue
from executioner.settings import Settings
from executioner.store import ExecutionStore

log = logging.getLogger(__name__)


class InvalidSubmission(ValueError):
    """The request breaks this deployment's bounds; `errors` name the fields, as pydantic's do."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


class TooLarge(InvalidSubmission):
    """Code or input is larger than the deployment allows, counted in bytes (UTF-8), not characters."""

    def __init__(self, field: str, limit: int):
        super().__init__([{"loc": [field], "msg": f"{field} is larger than {limit} bytes", "type": "too_large"}])
        self.field = field


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
        # The same model the API's schema shows, so both paths enforce the same bounds.
        self.request_model = execution_create_model(settings)

    def validate(self, code: str, stdin: str, limits: Mapping[str, Any]) -> tuple[ExecutionCreateBase, int]:
        """The request checked against the deployment's bounds, and its size in bytes; InvalidSubmission if not."""
        try:
            request: ExecutionCreateBase = self.request_model.model_validate(
                {"code": code, "stdin": stdin, "limits": dict(limits)}
            )
        except ValidationError as exc:
            raise InvalidSubmission(
                [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
            ) from None
        code_bytes, stdin_bytes = len(code.encode()), len(stdin.encode())
        if code_bytes > self.settings.max_code_bytes:
            raise TooLarge("code", self.settings.max_code_bytes)
        if stdin_bytes > self.settings.max_stdin_bytes:
            raise TooLarge("stdin", self.settings.max_stdin_bytes)
        return request, code_bytes + stdin_bytes

    def submit(
        self,
        *,
        owner: str,
        code: str,
        stdin: str = "",
        limits: Mapping[str, Any] | None = None,
        source: str | None = None,
        refusal_subject: str = "this key",
    ) -> Execution:
        """Check, admit, record (atomically with the caps' check) and queue a new execution.
        Raises InvalidSubmission (or TooLarge), Refused or EnqueueFailed; `refusal_subject` names the owner in
        refusals ("this key", "namespace team-a")."""
        request, size = self.validate(code, stdin, limits or {})
        refusal = self.admission.check(owner, incoming_bytes=size)
        if refusal:
            raise Refused(refusal)
        execution = Execution.new(
            code=request.code,
            stdin=request.stdin,
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
