"""Reading /v1/executions/{id}/events as a client would (httpx-sse), for the live-output suites."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import connect_sse


@dataclass
class Event:
    id: str
    event: str
    data: Any


def follow(client: httpx.Client, execution_id: str, last_event_id: str | None = None) -> Iterator[Event]:
    """The execution's events as they come, until the stream ends (after `result`) or the caller stops."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    with connect_sse(client, "GET", f"/v1/executions/{execution_id}/events", headers=headers) as source:
        source.response.raise_for_status()
        for sse in source.iter_sse():
            yield Event(sse.id, sse.event, json.loads(sse.data))


def joined(events: list[Event], stream: str) -> str:
    """The text of one output stream, checking that its pieces follow one another byte for byte."""
    text = ""
    for event in events:
        if event.event == stream:
            assert event.data["offset"] == len(text.encode()), f"{stream} piece at a gap or a repeat: {event}"
            text += event.data["data"]
    return text
