"""Live output: what a program prints, delivered while it runs.

The runner forwards the bytes it keeps (within the output cap) as chunk lines; a backend hands them to a LiveOutput
(runner_protocol.OutputSink). LiveOutput decodes them as UTF-8 exactly as the final document will (incrementally, with
replacement characters), numbers each piece by its byte offset in that text, and at the end, in `finish`, delivers
whatever the backend could not (a pod log that was not followed, a reconnect) so that what was delivered is exactly
the document's stdout and stderr.

RedisOutput delivers to the execution's event stream (store.event_stream_key), a Redis Stream that also holds every
status transition (the store appends those atomically with the transition) and expires with the record. Its entries
have two fields: `event` (status, stdout or stderr) and `data` (JSON): `{"status": ...}` or
`{"offset": BYTES, "data": TEXT}`, with `"truncated": true` on the piece after which the cap cut that stream off.
A thread of its own talks to Redis, so a slow Redis (or anyone reading the stream) never slows the program.
"""

from __future__ import annotations

import codecs
import json
import logging
import threading
import time
from typing import Any

import redis

from executioner.models import Outcome
from executioner.runner_protocol import OUTPUT_STREAMS
from executioner.store import ExecutionStore

log = logging.getLogger(__name__)
# Pieces of output are sent at most this often (the first at once): a flood becomes a few large entries.
FLUSH_SECONDS = 0.05
# Entries an event stream keeps at most (~); coalescing keeps a run far below it (60 s / 50 ms per stream).
STREAM_MAXLEN = 10_000
RETRY_SECONDS = 0.5
# How long `finish` waits for the last pieces to reach Redis before recording the result anyway.
FINISH_SECONDS = 5.0


class LiveOutput:
    """Decodes the runner's chunks into text pieces with byte offsets; subclasses deliver them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decoders = {name: codecs.getincrementaldecoder("utf-8")(errors="replace") for name in OUTPUT_STREAMS}
        self._text = dict.fromkeys(OUTPUT_STREAMS, "")  # all text delivered (or handed over) so far
        self._offset = dict.fromkeys(OUTPUT_STREAMS, 0)
        self._truncated = dict.fromkeys(OUTPUT_STREAMS, False)
        self._finished = False

    # runner_protocol.OutputSink -------------------------------------------------
    def write(self, stream: str, data: bytes) -> None:
        with self._lock:
            if not self._finished and not self._truncated[stream]:
                self._take(stream, self._decoders[stream].decode(data), False)

    def truncated(self, stream: str) -> None:
        with self._lock:
            if not self._finished and not self._truncated[stream]:
                self._take(stream, self._decoders[stream].decode(b"", final=True), True)

    # The end --------------------------------------------------------------------
    def finish(self, outcome: Outcome) -> Outcome:
        """Deliver what is still missing of the outcome's output, then stop; returns the outcome to record. An
        outcome without output (the sandbox died before its envelope) gets what the runner forwarded until then."""
        updates: dict[str, Any] = {}
        with self._lock:
            for stream in OUTPUT_STREAMS:
                if not self._truncated[stream]:
                    self._take(stream, self._decoders[stream].decode(b"", final=True), False)
                final, delivered = getattr(outcome, stream), self._text[stream]
                flagged = getattr(outcome, f"{stream}_truncated")
                if not final and delivered:
                    updates[stream], updates[f"{stream}_truncated"] = delivered, self._truncated[stream]
                elif final.startswith(delivered):
                    if len(final) > len(delivered) or (flagged and not self._truncated[stream]):
                        self._take(stream, final[len(delivered) :], flagged)
                else:
                    log.warning("the live %s differed from the runner's result; the result stands", stream)
            self._finished = True
        self._close()
        return outcome.model_copy(update=updates) if updates else outcome

    # For subclasses -------------------------------------------------------------
    def _take(self, stream: str, text: str, truncated: bool) -> None:
        """Called with the lock held, in order: hand one piece over for delivery."""
        if not text and not truncated:
            return
        self._text[stream] += text
        self._truncated[stream] = self._truncated[stream] or truncated
        self.deliver(stream, self._offset[stream], text, truncated)
        self._offset[stream] += len(text.encode())

    def deliver(self, stream: str, offset: int, text: str, truncated: bool) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """After the last delivery."""


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
        self._thread.join(FINISH_SECONDS)
        if self._thread.is_alive():
            log.warning("live output of %s did not reach Redis in time; the result is recorded anyway", self.channel)

    def _send_forever(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._wake.wait()
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
            sent = self._send(batch)
            if not sent:
                with self._lock:
                    if self._closing:
                        return  # Redis is away at the end: the recorded document still carries all the output
                    self._pending[:0] = batch  # in order, for the next round: offsets never skip
            time.sleep(FLUSH_SECONDS if sent else RETRY_SECONDS)

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
