"""An execution's live events (`GET /v1/executions/{id}/events`, Server-Sent Events), parsed without a dependency."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from ._models import Execution


@dataclass(frozen=True)
class Event:
    """One event: `kind` is "status", "stdout", "stderr" or "result"; `id` resumes the stream right after it."""

    kind: str
    id: str | None
    data: dict[str, Any]

    @property
    def text(self) -> str:
        """The output of a "stdout"/"stderr" event ("" for the others)."""
        return str(self.data.get("data", "")) if self.kind in ("stdout", "stderr") else ""

    @property
    def execution(self) -> Execution | None:
        """The final document of a "result" event (the last one of a stream)."""
        return Execution.from_json(self.data) if self.kind == "result" else None


class EventParser:
    """Feeds on the lines of a text/event-stream and returns each event once its blank line arrives."""

    def __init__(self) -> None:
        self._kind: str = "message"
        self._id: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        if line == "":
            if not self._data:
                self._kind = "message"
                return None
            event = Event(self._kind, self._id, json.loads("\n".join(self._data)))
            self._kind, self._data = "message", []
            return event
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._kind = value
        elif field == "data":
            self._data.append(value)
        elif field == "id":
            self._id = value
        return None


def events_of(lines: Iterator[str]) -> Iterator[Event]:
    parser = EventParser()
    for line in lines:
        if (event := parser.feed(line)) is not None:
            yield event


async def aevents_of(lines: AsyncIterator[str]) -> AsyncIterator[Event]:
    parser = EventParser()
    async for line in lines:
        if (event := parser.feed(line)) is not None:
            yield event
