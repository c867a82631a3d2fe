"""Live output through Redis: the worker's side of GET /v1/executions/{id}/events.

RedisOutput delivers to the execution's event stream (store.event_stream_key), a Redis Stream that also holds every
status transition (the store appends those atomically with the transition) and expires with the record. Its entries
have two fields: `event` (status, stdout or stderr) and `data` (JSON): `{"status": ...}` or
`{"offset": BYTES, "data": TEXT}`, with `"truncated": true` on the piece after which the cap cut that stream off.
A thread of its own talks to Redis, so a slow Redis (or anyone reading the stream) never slows the program.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, cast

import redis

from executioner.live_output import LiveOutput
from executioner.store import ExecutionStore

log = logging.getLogger(__name__)
# Pieces of output are sent at most this often (the first after GATHER_SECONDS): a flood becomes a few large entries.
FLUSH_SECONDS = 0.05
GATHER_SECONDS = 0.005
# Entries an event stream keeps at most (~); coalescing keeps a run far below it (60 s / 50 ms per stream).
STREAM_MAXLEN = 10_000
RETRY_SECONDS = 0.5
# How long `finish` waits for the last pieces to reach Redis before recording the result anyway.
FINISH_SECONDS = 5.0


def chunk_data(offset: int, text: str, truncated: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"offset": offset, "data": text}
    if truncated:
        data["truncated"] = True
    return data


class RedisOutput(LiveOutput):
    """Appends the pieces to the execution's event stream from a thread of its own, coalescing them."""

    def __init__(self, client: redis.Redis, execution_id: str, retention_seconds: int):
        super().__init__()
        self.redis = client
        self.stream_key = ExecutionStore.event_stream_key(execution_id)
        self.channel = ExecutionStore.output_channel(execution_id)
        self.retention_seconds = retention_seconds
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._wake = threading.Condition(self._lock)
        self._closing = False
        self._closed = threading.Event()  # ends the pause between sends: the result need not wait it out
        self._failed = False
        self._thread = threading.Thread(target=self._send_forever, name=f"output-{execution_id}", daemon=True)
        self._thread.start()

    def deliver(self, stream: str, offset: int, text: str, truncated: bool) -> None:
        last = self._pending[-1] if self._pending else None
        if last and last[0] == stream and not last[1].get("truncated"):
            last[1]["data"] += text  # consecutive pieces of one stream are one entry
            if truncated:
                last[1]["truncated"] = True
        else:
            self._pending.append((stream, chunk_data(offset, text, truncated)))
        self._wake.notify()

    def _close(self) -> None:
        with self._lock:
            self._closing = True
            self._wake.notify()
        self._closed.set()
        self._thread.join(FINISH_SECONDS)
        if self._thread.is_alive():
            log.warning("live output of %s did not reach Redis in time; the result is recorded anyway", self.channel)

    def _send_forever(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._wake.wait()
                gather = not self._closing
            if gather:  # print() writes its text and its newline apart: let them travel as one entry
                time.sleep(GATHER_SECONDS)
            with self._lock:
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
            sent = self._send(batch)
            if not sent:
                with self._lock:
                    if self._closing:
                        return  # Redis is away at the end: the recorded document still carries all the output
                    self._pending[:0] = batch  # in order, for the next round: offsets never skip
            self._closed.wait(FLUSH_SECONDS if sent else RETRY_SECONDS)

    def _send(self, batch: list[tuple[str, dict[str, Any]]]) -> bool:
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for stream, data in batch:
                    fields: dict[Any, Any] = {"event": stream, "data": json.dumps(data, ensure_ascii=False)}
                    pipe.xadd(self.stream_key, fields, maxlen=STREAM_MAXLEN, approximate=True)
                pipe.expire(self.stream_key, self.retention_seconds)
                pipe.publish(self.channel, "output")
                pipe.execute()
            self._failed = False
            return True
        except redis.RedisError as exc:
            if not self._failed:
                log.warning("cannot send live output of %s: %s", self.channel, exc)
            self._failed = True
            return False


class OutputSoFar:
    """The output an execution has printed so far, read from its event stream in steps (the operator mirrors it into
    an ExecutionRequest's status while it runs)."""

    def __init__(self, execution_id: str):
        self.stream_key = ExecutionStore.event_stream_key(execution_id)
        self.after = "0"
        self.text = {"stdout": "", "stderr": ""}

    def read(self, client: redis.Redis) -> bool:
        """Take the entries added since the last read; True when the output grew."""
        grew = False
        while True:
            replies = cast(list[Any], client.xread({self.stream_key: self.after}, count=500))
            entries: list[tuple[str, dict[str, str]]] = replies[0][1] if replies else []
            for entry_id, fields in entries:
                self.after = entry_id
                if fields["event"] in self.text:
                    self.text[fields["event"]] += json.loads(fields["data"])["data"]
                    grew = True
            if len(entries) < 500:
                return grew
