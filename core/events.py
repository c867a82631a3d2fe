"""Waiting for executions without a thread per waiter: one Redis pub/sub listener per process, asyncio waiters.

Every status transition is published on the execution's channel (see store.py). The listener holds one
pattern subscription for all of them and wakes the waiters of that execution; a waiter registers before it reads
the record, so a transition in between is never missed, and it always reads the record again at the end, so a
lost message (Redis restarting, say) costs at most the wait, never a wrong answer.

Following an execution's event stream (live output, `follow`) works the same way: the listener also hears the
output channels, and a follower reads the stream again whenever it is woken, or every POLL_SECONDS anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from executioner.models import Execution, Status
from executioner.store import ExecutionStore, decode_record

log = logging.getLogger(__name__)
RECONNECT_SECONDS = 1.0
POLL_SECONDS = 1.0
CLOSE_SECONDS = 2.0
REDIS_CONNECTIONS = 32


# Entries read from an event stream at a time.
READ_COUNT = 500
# A follower with no news this long reads the stream again anyway (a lost wake-up costs at most this).
FOLLOW_POLL_SECONDS = 5.0


@dataclass(frozen=True)
class StreamEvent:
    """One event of an execution's stream: `data` is JSON text (see streams.py); the last is `result`."""

    id: str
    event: str
    data: str


class TooManyWaiters(RuntimeError):
    """This owner already has as many requests waiting as it may."""


class ExecutionEvents:
    def __init__(self, redis_url: str, max_waiters_per_owner: int = 0):
        # A bounded pool that makes readers queue for a connection: hundreds of waiters must not each open one.
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url, decode_responses=True, max_connections=REDIS_CONNECTIONS, timeout=None
        )
        self._pool = pool
        self.redis: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        self.max_waiters_per_owner = max_waiters_per_owner
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._per_owner: Counter[str] = Counter()
        self._followers: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None

    # Lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen_forever(), name="execution-events")

    async def close(self) -> None:
        if self._listener:
            self._listener.cancel()
            # Bounded: a listener stuck in a socket read must not keep the process from exiting.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._listener, CLOSE_SECONDS)
        await self.redis.aclose()
        await self._pool.disconnect()

    # Waiting -------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def waiting_slot(self, owner: str) -> AsyncIterator[None]:
        """Hold one of the owner's waiting slots; TooManyWaiters when none is free."""
        if self.max_waiters_per_owner and self._per_owner[owner] >= self.max_waiters_per_owner:
            raise TooManyWaiters(f"this key already has {self.max_waiters_per_owner} requests waiting")
        self._per_owner[owner] += 1
        try:
            yield
        finally:
            self._per_owner[owner] -= 1
            if not self._per_owner[owner]:
                del self._per_owner[owner]

    async def get(self, execution_id: str) -> Execution | None:
        raw = cast(dict[str, str], await self.redis.hgetall(ExecutionStore.record_key(execution_id)))
        return decode_record(raw) if raw else None

    async def wait_until_terminal(self, execution_id: str, timeout: float) -> Execution | None:
        """The execution once it is terminal, or as it is when `timeout` passes (None if it does not exist)."""
        woken = asyncio.Event()
        self._waiters[execution_id].add(woken)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            execution = await self.get(execution_id)
            while execution is not None and not execution.status.terminal:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), remaining)
                woken.clear()
                execution = await self.get(execution_id)
            return execution
        finally:
            waiters = self._waiters[execution_id]
            waiters.discard(woken)
            if not waiters:
                del self._waiters[execution_id]

    # Following the event stream ----------------------------------------------
    @contextlib.contextmanager
    def _following(self, execution_id: str) -> Iterator[asyncio.Event]:
        woken = asyncio.Event()
        self._followers[execution_id].add(woken)
        try:
            yield woken
        finally:
            followers = self._followers[execution_id]
            followers.discard(woken)
            if not followers:
                del self._followers[execution_id]

    async def follow(self, execution_id: str, after: str = "0") -> AsyncIterator[StreamEvent]:
        """The execution's events after stream id `after` ("0": from the start), live until its terminal status,
        then a `result` event whose data is its public document. Ends early if the record disappears."""
        key = ExecutionStore.event_stream_key(execution_id)
        record = ExecutionStore.record_key(execution_id)
        last = after
        with self._following(execution_id) as woken:
            while True:
                woken.clear()
                # The status first: when it is already final, the read below sees every event before it.
                status = await self.redis.hget(record, "status")
                if status is None:
                    return
                replies = cast(list[Any], await self.redis.xread({key: last}, count=READ_COUNT))  # RESP2: a list
                entries: list[tuple[str, dict[str, str]]] = replies[0][1] if replies else []
                for entry_id, fields in entries:
                    last = entry_id
                    yield StreamEvent(entry_id, fields["event"], fields["data"])
                    if fields["event"] == "status" and Status(json.loads(fields["data"])["status"]).terminal:
                        break
                else:
                    if entries:
                        continue
                    if not Status(json.loads(status)).terminal:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(woken.wait(), FOLLOW_POLL_SECONDS)
                        continue
                execution = await self.get(execution_id)
                if execution is not None:
                    yield StreamEvent(last, "result", execution.public().model_dump_json())
                return

    @property
    def waiting(self) -> int:
        return sum(len(waiters) for waiters in self._waiters.values())

    # The listener --------------------------------------------------------------
    async def _listen_forever(self) -> None:
        prefix = ExecutionStore.events_channel("")
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.psubscribe(prefix + "*", ExecutionStore.output_channel("") + "*")
                    self._wake_all()  # anything published while we were away: waiters re-read
                    while True:  # polled with a timeout rather than listen(), so cancelling always lands
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_SECONDS)
                        if message is not None:
                            self._dispatch(message, prefix)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("execution events lost Redis; reconnecting", exc_info=True)
                await asyncio.sleep(RECONNECT_SECONDS)

    def _dispatch(self, message: dict[str, Any], prefix: str) -> None:
        if message.get("type") != "pmessage":
            return
        channel = str(message["channel"])
        output_prefix = ExecutionStore.output_channel("")
        execution_id = channel.removeprefix(output_prefix if channel.startswith(output_prefix) else prefix)
        for woken in self._followers.get(execution_id, ()):
            woken.set()
        if channel.startswith(output_prefix) or not Status(message["data"]).terminal:
            return
        for woken in self._waiters.get(execution_id, ()):
            woken.set()

    def _wake_all(self) -> None:
        for waiters in [*self._waiters.values(), *self._followers.values()]:
            for woken in waiters:
                woken.set()
