"""/v1/executions: submit, read, list and cancel executions."""

# No `from __future__ import annotations` here: the request model is built per app, inside the factory,
# and FastAPI must see the class itself in the route's signature.

from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Response, status
from starlette.concurrency import run_in_threadpool

from executioner.admission import Refusal
from executioner.api.deps import CurrentOwner, EventsDep, MetricsDep, StoreDep, SubmitterDep
from executioner.api.metrics import ApiMetrics
from executioner.events import ExecutionEvents, TooManyWaiters
from executioner.models import (
    CANCELLED_BY_REQUEST,
    Execution,
    ExecutionCreateBase,
    ExecutionPage,
    ExecutionPublic,
    Status,
    execution_create_model,
)
from executioner.settings import Settings
from executioner.submission import EnqueueFailed, InvalidSubmission, Refused, TooLarge

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key"},
    404: {"description": "No such execution (or it belongs to another key)"},
}


def refused(refusal: Refusal, metrics: ApiMetrics) -> HTTPException:
    metrics.refused(refusal.reason)
    return HTTPException(refusal.status_code, refusal.detail, headers={"Retry-After": str(refusal.retry_after)})


def waiting_slot(events: ExecutionEvents, owner: str, wait: float) -> AbstractAsyncContextManager[None]:
    """One of the owner's waiting slots when the request will wait (waiting holds no thread, but each costs memory)."""
    return events.waiting_slot(owner) if wait > 0 else nullcontext()


def too_many_waiters(exc: TooManyWaiters, metrics: ApiMetrics) -> HTTPException:
    metrics.refused("waiters")
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": "1"})


def in_body(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Submission errors located in the request body, as FastAPI's own validation errors are."""
    return [{**error, "loc": ["body", *error["loc"]]} for error in errors]


def executions_router(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/v1/executions", tags=["executions"])
    # The request model, with this deployment's bounds in its schema (a class made at run time).
    ExecutionCreate = execution_create_model(settings)

    def not_found(execution_id: str) -> HTTPException:
        return HTTPException(status.HTTP_404_NOT_FOUND, f"execution {execution_id} not found")

    def owned(store: StoreDep, owner: str, execution_id: str) -> Execution:
        execution = store.get(execution_id)
        if execution is None or execution.owner != owner:
            raise not_found(execution_id)
        return execution

    @router.post(
        "",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=ExecutionPublic,
        summary="Run code in a new sandbox",
        responses={
            200: {"description": "Finished within `wait` seconds", "model": ExecutionPublic},
            400: {"description": "The body is not readable JSON text"},
            413: {
                "description": "code, stdin, an input file (named), the files together or the whole body is too large"
            },
            422: {
                "description": "The body breaks a rule: an unknown runtime, a bad file path (named), too many files..."
            },
            429: {"description": "Rate limit, a per-key cap or the key's byte budget reached; see Retry-After"},
            503: {
                "description": "The queue or the store is full, or the execution could not be queued; see Retry-After"
            },
            **ERRORS,
        },
    )
    async def create_execution(
        payload: Annotated[ExecutionCreate, Body()],  # type: ignore[valid-type]
        response: Response,
        submitter: SubmitterDep,
        events: EventsDep,
        metrics: MetricsDep,
        owner: CurrentOwner,
        wait: Annotated[
            float,
            Query(
                ge=0, le=settings.max_wait_seconds, description="Seconds to wait for the result before answering 202."
            ),
        ] = 0,
    ) -> ExecutionPublic:
        body: ExecutionCreateBase = payload

        def admit_and_submit() -> Execution:  # blocking Redis and broker calls: run on a worker thread
            try:
                return submitter.submit(
                    owner=owner,
                    code=body.code,
                    stdin=body.stdin,
                    # only the limits it set: a runtime's default memory applies to a request that sets none
                    limits=body.limits.model_dump(exclude_unset=True),
                    runtime=body.runtime,
                    files=[file.model_dump() for file in body.files],
                )
            except TooLarge as exc:
                raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, in_body(exc.errors)) from exc
            except InvalidSubmission as exc:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, in_body(exc.errors)) from exc
            except Refused as exc:
                raise refused(exc.refusal, metrics) from exc
            except EnqueueFailed as exc:
                metrics.refused("enqueue_failed")
                raise HTTPException(
                    status.HTTP_503_SERVICE_UNAVAILABLE,
                    "the execution could not be queued; try again",
                    headers={"Retry-After": "5"},
                ) from exc

        try:
            async with waiting_slot(events, owner, wait):  # taken first: a refused wait creates nothing
                execution = await run_in_threadpool(admit_and_submit)
                response.headers["Location"] = f"/v1/executions/{execution.id}"
                if wait > 0:
                    execution = await events.wait_until_terminal(execution.id, wait) or execution
        except TooManyWaiters as exc:
            raise too_many_waiters(exc, metrics) from exc
        if execution.status.terminal:
            response.status_code = status.HTTP_200_OK
        return execution.public()

    @router.get("/{execution_id}", response_model=ExecutionPublic, summary="Read one execution", responses=ERRORS)
    async def get_execution(
        execution_id: str,
        events: EventsDep,
        metrics: MetricsDep,
        owner: CurrentOwner,
        wait: Annotated[
            float, Query(ge=0, le=settings.max_wait_seconds, description="Seconds to wait for a terminal status.")
        ] = 0,
    ) -> ExecutionPublic:
        execution = await events.get(execution_id)
        if execution is None or execution.owner != owner:
            raise not_found(execution_id)
        if wait > 0 and not execution.status.terminal:
            try:
                async with events.waiting_slot(owner):
                    execution = await events.wait_until_terminal(execution_id, wait) or execution
            except TooManyWaiters as exc:
                raise too_many_waiters(exc, metrics) from exc
        return execution.public()

    @router.get(
        "",
        response_model=ExecutionPage,
        summary="List recent executions, newest first, as summaries (no code, input or output)",
        responses=ERRORS,
    )
    def list_executions(
        store: StoreDep,
        owner: CurrentOwner,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[
            str | None, Query(pattern=r"^\d{1,9}$", description="From a previous page's next_cursor.")
        ] = None,
    ) -> ExecutionPage:
        offset = int(cursor or 0)
        items, more = store.page(owner, limit, offset)
        return ExecutionPage(items=items, next_cursor=str(offset + limit) if more else None)

    @router.delete(
        "/{execution_id}",
        response_model=ExecutionPublic,
        summary="Cancel a queued or running execution",
        responses={409: {"description": "The execution already finished"}, **ERRORS},
    )
    def cancel_execution(execution_id: str, store: StoreDep, owner: CurrentOwner) -> ExecutionPublic:
        execution = owned(store, owner, execution_id)
        cancelled = store.finish(execution_id, Status.cancelled, {"error": CANCELLED_BY_REQUEST})
        if not cancelled:
            current = store.get(execution_id) or execution
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"execution {execution_id} already finished ({current.status})"
            )
        return (store.get(execution_id) or execution).public()

    return router
