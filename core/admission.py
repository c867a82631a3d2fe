"""Whether a new execution may enter: the store's memory high-water mark, a per-key token bucket, and the caps
(global queue, per-key active, per-key stored bytes) that the store checks atomically as it creates the record."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from executioner.settings import Settings
from executioner.store import PREFIX, CapReached, Caps, ExecutionStore

# KEYS: bucket. ARGV: rate per second, burst. Returns {allowed (0/1), seconds until a token}.
_TOKEN_BUCKET_LUA = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1e6
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {allowed, tostring((1 - tokens) / rate)}
"""
# How long a reading of the store's memory stays fresh: INFO on every request would be wasteful.
MEMORY_READING_SECONDS = 0.5
# Between readings an admitted request is assumed to cost this many times its size, plus a record's overhead:
# Redis's allocator rounds a 1 MiB value up to 1.25 MiB, and the script's arguments pass through its buffers.
ESTIMATED_COST_FACTOR = 2
RECORD_OVERHEAD_BYTES = 4096


@dataclass(frozen=True)
class Refusal:
    status_code: int
    detail: str
    retry_after: int
    reason: str  # a short name, for metrics


def caps_for(settings: Settings) -> Caps:
    return Caps(
        max_queued=settings.max_queued,
        max_active_for_owner=settings.max_active_per_key,
        byte_budget_for_owner=settings.max_stored_bytes_per_key,
    )


def refusal_for_cap(settings: Settings, reached: CapReached, subject: str = "this key") -> Refusal:
    """The answer for a cap the store found reached: the global queue is everyone's wait (503), the others the
    owner's (`subject` names it: "this key", "namespace team-a")."""
    if reached.cap == "queue_full":
        return Refusal(
            503, f"the queue is full ({settings.max_queued} executions waiting); try again later", 5, "queue_full"
        )
    if reached.cap == "active_cap":
        return Refusal(
            429, f"{subject} already has {settings.max_active_per_key} executions queued or running", 1, "active_cap"
        )
    return Refusal(
        429,
        f"{subject}'s retained executions already hold {reached.current} bytes of code, input and output "
        f"(budget {settings.max_stored_bytes_per_key}); they free up as records expire",
        60,
        "byte_budget",
    )


def memory_refusal(settings: Settings, used_bytes: int, max_bytes: int) -> Refusal | None:
    """503 once the store passes its high-water mark, leaving room for running executions' results."""
    limit = max_bytes or settings.store_max_bytes
    if not limit or used_bytes < settings.store_high_water_ratio * limit:
        return None
    return Refusal(
        503,
        f"the execution store is nearly full ({used_bytes} of {limit} bytes); try again later",
        30,
        "store_full",
    )


def rate_refusal(settings: Settings, seconds_until_token: float) -> Refusal:
    return Refusal(
        429,
        f"rate limit of {settings.rate_limit_per_minute:g} executions per minute exceeded",
        max(1, math.ceil(seconds_until_token)),
        "rate_limit",
    )


class Admission:
    def __init__(self, store: ExecutionStore, settings: Settings):
        self.store = store
        self.settings = settings
        self._bucket = store.redis.register_script(_TOKEN_BUCKET_LUA)
        self._memory: tuple[float, int, int] = (-math.inf, 0, 0)
        self._memory_lock = threading.Lock()

    def check(self, owner: str, incoming_bytes: int) -> Refusal | None:
        """None when the owner may submit `incoming_bytes` now (the caps are checked when the record is created);
        otherwise why not and when to try again."""
        used, maximum = self.store_memory(incoming_bytes)
        refusal = memory_refusal(self.settings, used, maximum)
        if refusal is None and self.settings.rate_limit_per_minute:
            allowed, wait = self._bucket(
                keys=[f"{PREFIX}:ratelimit:{owner}"],
                args=[self.settings.rate_limit_per_minute / 60, self.settings.rate_limit_burst],
            )
            if not allowed:
                refusal = rate_refusal(self.settings, float(wait))
        return refusal

    def store_memory(self, incoming_bytes: int = 0) -> tuple[int, int]:
        """The store's (used, max) memory: read from Redis at most once a second, and in between estimated by
        adding what this process let in since, so a burst cannot slip past the high-water mark unseen."""
        with self._memory_lock:
            read_at, used, maximum = self._memory
            if time.monotonic() - read_at >= MEMORY_READING_SECONDS:
                used, maximum = self.store.memory()
                read_at = time.monotonic()
            used += ESTIMATED_COST_FACTOR * incoming_bytes + RECORD_OVERHEAD_BYTES
            self._memory = (read_at, used, maximum)
            return used, maximum
