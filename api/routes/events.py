"""/v1/executions/{id}/events: an execution's status and output, live, as Server-Sent Events."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from executioner.api.deps import CurrentOwner, EventsDep, MetricsDep
from executioner.events import TooManyWaiters

router = APIRouter(prefix="/v1/executions", tags=["executions"])
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")

DESCRIPTION = """\
The execution's events, from its creation on, then live until it ends (a late subscriber gets everything so far,
then the live tail). Each event has an `id`; reconnecting with `Last-Event-ID: <id>` resumes right after it, without
gaps or repeats.

- `status`: `{"status": "queued" | "running" | ...}`, on every transition.
- `stdout`, `stderr`: `{"offset": N, "data": "TEXT"}`, a piece of the program's output as it is written; `offset` is
  the byte offset of `data` in the stream's UTF-8 text, so the pieces of one stream join into exactly the document's
  `stdout` (`stderr`). The output cap applies: the piece after which the cap cut a stream off carries
  `"truncated": true`.
- `result`: the execution document (as `GET /v1/executions/{id}` returns it), after its terminal `status`; then the
  stream ends.

A comment line (`: ping`) is sent after 15 s without events, so proxies keep the connection open."""

EVENT_STREAM = {
    "description": "Server-Sent Events (`text/event-stream`), see above",
    "content": {
        "text/event-stream": {
            "schema": {"type": "string"},
            "example": 'event: status\ndata: {"status": "running"}\nid: 1764240000000-0\n\n'
            'event: stdout\ndata: {"offset": 0, "data": "hello\\n"}\nid: 1764240000010-0\n\n',
        }
    },
}


async def resume_point(
    execution_id: str,
    events: EventsDep,
    owner: CurrentOwner,
    last_event_id: Annotated[
        str | None, Header(description="Resume after this event (browsers send it when they reconnect).")
    ] = None,
) -> str:
    """Where the stream starts: after Last-Event-ID, or at the beginning. A dependency, so a stranger's or a
    missing execution answers 404 before the stream starts."""
    execution = await events.get(execution_id)
    if execution is None or execution.owner != owner:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"execution {execution_id} not found")
    if last_event_id is not None and not STREAM_ID.match(last_event_id):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            [{"loc": ["header", "last-event-id"], "msg": "not an event id of this stream", "type": "value_error"}],
        )
    return last_event_id or "0"


async def stream_slot(events: EventsDep, metrics: MetricsDep, owner: CurrentOwner) -> AsyncIterator[None]:
    """One of the owner's waiting slots (EXECUTIONER_MAX_WAITERS_PER_KEY), held while the stream is open: an open
    stream costs no thread, but it costs memory and a read of Redis per event."""
    try:
        async with events.waiting_slot(owner):
            yield
    except TooManyWaiters as exc:  # only taking the slot raises it
        metrics.refused("waiters")
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": "1"}) from exc


@router.get(
    "/{execution_id}/events",
    response_class=EventSourceResponse,
    summary="Follow an execution's status and output live (Server-Sent Events)",
    description=DESCRIPTION,
    responses={
        200: EVENT_STREAM,
        400: {"description": "Last-Event-ID is not an event id of this stream"},
        401: {"description": "Missing or unknown API key"},
        404: {"description": "No such execution (or it belongs to another key)"},
        429: {"description": "The key already has EXECUTIONER_MAX_WAITERS_PER_KEY waits and streams open"},
    },
    # Held until the stream ends ("request" scope: a dependency's exit runs after the response is sent).
    dependencies=[Depends(stream_slot, scope="request")],
)
async def follow_execution(
    execution_id: str, events: EventsDep, after: Annotated[str, Depends(resume_point)]
) -> AsyncIterator[ServerSentEvent]:
    async for event in events.follow(execution_id, after):
        yield ServerSentEvent(event=event.event, raw_data=event.data, id=event.id)
