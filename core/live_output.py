"""Live output: what a program prints, delivered while it runs (no Redis here: `executioner run` uses it too).

The runner forwards the bytes it keeps (within the output cap) as chunk lines; a backend hands them to a LiveOutput
(runner_protocol.OutputSink). LiveOutput decodes them as UTF-8 exactly as the final document will (incrementally, with
replacement characters), numbers each piece by its byte offset in that text, and at the end, in `finish`, delivers
whatever the backend could not (a pod log that was not followed, a reconnect) so that what was delivered is exactly
the document's stdout and stderr. Subclasses deliver: streams.RedisOutput to the execution's event stream, the CLI
to the terminal.
"""

from __future__ import annotations

import codecs
import logging
import threading
from typing import Any

from executioner.models import Outcome
from executioner.runner_protocol import OUTPUT_STREAMS

log = logging.getLogger(__name__)


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
