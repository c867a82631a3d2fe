"""Whether a new execution may enter: a per-key token bucket, a per-key cap, a global queue cap."""

from __future__ import annotations

import math
from dataclasses import dataclass

from executioner.settings import Settings
from executioner.store import PREFIX, ExecutionStore

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


@dataclass(frozen=True)
class Refusal:
    status_code: int
    detail: str
    retry_after: int


def refusal_for(settings: Settings, *, queued: int, active_of_owner: int) -> Refusal | None:
    """The caps, as pure arithmetic: the global queue first (everyone waits), then the owner's own."""
    if settings.max_queued and queued >= settings.max_queued:
        return Refusal(503, f"the queue is full ({settings.max_queued} executions waiting); try again later", 5)
    if settings.max_active_per_key and active_of_owner >= settings.max_active_per_key:
        return Refusal(429, f"this key already has {settings.max_active_per_key} executions queued or running", 1)
    return None


def rate_refusal(settings: Settings, seconds_until_token: float) -> Refusal:
    return Refusal(
        429,
        f"rate limit of {settings.rate_limit_per_minute:g} executions per minute exceeded",
        max(1, math.ceil(seconds_until_token)),
    )


class Admission:
    def __init__(self, store: ExecutionStore, settings: Settings):
        self.store = store
        self.settings = settings
        self._bucket = store.redis.register_script(_TOKEN_BUCKET_LUA)

    def check(self, owner: str) -> Refusal | None:
        """None when the owner may submit now; otherwise why not and when to try again."""
        s = self.settings
        refusal = refusal_for(
            s,
            queued=self.store.count_queued() if s.max_queued else 0,
            active_of_owner=self.store.count_active(owner) if s.max_active_per_key else 0,
        )
        if refusal is None and s.rate_limit_per_minute:
            allowed, wait = self._bucket(
                keys=[f"{PREFIX}:ratelimit:{owner}"], args=[s.rate_limit_per_minute / 60, s.rate_limit_burst]
            )
            if not allowed:
                refusal = rate_refusal(s, float(wait))
        return refusal
