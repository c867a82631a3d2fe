"""Waiting for executions without a thread per waiter: one Redis pub/sub listener per process, asyncio waiters.

Every status transition is published on the execution's channel (see store.py). The listener holds one
pattern subscription for all of them and wakes the waiters of that execution; a waiter registers before it reads
the record, so a transition in between is never missed, and it always reads the record again at the end, so a
lost message (Redis restarting, say) costs at most the wait, never a wrong answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from typing import Any, cast

import redis.asyncio as aioredis

from executioner.models import Execution, Status
from executioner.store import ExecutionStore, decode_record

log = logging.getLogger(__name__)
RECONNECT_SECONDS = 1.0
POLL_SECONDS = 1.0
CLOSE_SECONDS = 2.0
REDIS_CONNECTIONS = 32


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

    @property
    def waiting(self) -> int:
        return sum(len(waiters) for waiters in self._waiters.values())

    # The listener --------------------------------------------------------------
    async def _listen_forever(self) -> None:
        prefix = ExecutionStore.events_channel("")
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.psubscribe(prefix + "*")
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
        if message.get("type") != "pmessage" or not Status(message["data"]).terminal:
            return
        for woken in self._waiters.get(str(message["channel"]).removeprefix(prefix), ()):
            woken.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for woken in waiters:
                woken.set()
