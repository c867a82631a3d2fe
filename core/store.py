"""Execution records in Redis, changed only through compare-and-set transitions.

Each record is a hash whose fields hold JSON values. A Lua script checks the
current status and applies a transition atomically, so a redelivered Celery
message, a second worker or the operator can never write a second result.
Every transition is published on the record's channel; `?wait` blocks on it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any, cast

import redis

from executioner.models import TRANSITIONS, Execution, Status, utcnow

PREFIX = "executioner"

# KEYS: record, lease, running set, events channel, active set (per-owner sets are "<active>:<owner>")
# ARGV: allowed current statuses (JSON list), new status, lease owner ("" for none),
#       lease ttl ms, then field/value pairs (values JSON-encoded)
_TRANSITION_LUA = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return -1 end
current = cjson.decode(current)
local allowed = false
for _, status in ipairs(cjson.decode(ARGV[1])) do
  if status == current then allowed = true end
end
if not allowed then return 0 end
redis.call('HSET', KEYS[1], 'status', cjson.encode(ARGV[2]), unpack(ARGV, 5))
if ARGV[2] == 'running' then
  redis.call('ZADD', KEYS[3], redis.call('TIME')[1], KEYS[1])
  if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4]) end
elseif ARGV[2] ~= 'queued' then
  redis.call('ZREM', KEYS[3], KEYS[1])
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[5], KEYS[1])
  redis.call('SREM', KEYS[5] .. ':' .. cjson.decode(redis.call('HGET', KEYS[1], 'owner')), KEYS[1])
end
redis.call('PUBLISH', KEYS[4], ARGV[2])
return 1
"""

# Extends a lease only while the caller still holds it.
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class ExecutionStore:
    def __init__(self, client: redis.Redis, retention_seconds: int):
        """`client` must decode responses (str, not bytes): use from_url."""
        self.redis = client
        self.retention_seconds = retention_seconds
        self._transition = client.register_script(_TRANSITION_LUA)
        self._renew = client.register_script(_RENEW_LUA)

    @classmethod
    def from_url(cls, url: str, retention_seconds: int) -> ExecutionStore:
        return cls(redis.Redis.from_url(url, decode_responses=True, health_check_interval=30), retention_seconds)

    # Keys -----------------------------------------------------------------
    @staticmethod
    def record_key(execution_id: str) -> str:
        return f"{PREFIX}:execution:{execution_id}"

    @staticmethod
    def lease_key(execution_id: str) -> str:
        return f"{PREFIX}:lease:{execution_id}"

    @staticmethod
    def events_channel(execution_id: str) -> str:
        return f"{PREFIX}:events:{execution_id}"

    @staticmethod
    def index_key(owner: str) -> str:
        return f"{PREFIX}:index:{owner}"

    RUNNING_KEY = f"{PREFIX}:running"
    # Every execution not yet final, and per owner ("<ACTIVE_KEY>:<owner>"), for admission caps.
    ACTIVE_KEY = f"{PREFIX}:active"

    # Records --------------------------------------------------------------
    def create(self, execution: Execution) -> None:
        key = self.record_key(execution.id)
        score = execution.created_at.timestamp()
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=cast(dict[Any, Any], _encode(execution.model_dump(mode="json"))))
            pipe.expire(key, self.retention_seconds)
            pipe.zadd(self.index_key(execution.owner), {execution.id: score})
            pipe.zremrangebyscore(self.index_key(execution.owner), "-inf", score - self.retention_seconds)
            pipe.zadd(self.ACTIVE_KEY, {key: score})
            pipe.sadd(f"{self.ACTIVE_KEY}:{execution.owner}", key)
            pipe.publish(self.events_channel(execution.id), execution.status.value)
            pipe.execute()

    def get(self, execution_id: str) -> Execution | None:
        raw = cast(dict[str, str], self.redis.hgetall(self.record_key(execution_id)))
        return _decode(raw) if raw else None

    def get_many(self, execution_ids: Iterable[str]) -> list[Execution]:
        with self.redis.pipeline(transaction=False) as pipe:
            for execution_id in execution_ids:
                pipe.hgetall(self.record_key(execution_id))
            return [_decode(raw) for raw in pipe.execute() if raw]

    def page(self, owner: str, limit: int, offset: int = 0) -> tuple[list[Execution], bool]:
        """One owner's executions, newest first; also says whether more records follow."""
        ids = cast(list[str], self.redis.zrevrange(self.index_key(owner), offset, offset + limit))
        return self.get_many(ids[:limit]), len(ids) > limit

    def transition(
        self,
        execution_id: str,
        to: Status,
        fields: dict[str, Any] | None = None,
        *,
        allowed_from: Iterable[Status] | None = None,
        lease_owner: str = "",
        lease_seconds: float = 0,
    ) -> bool:
        """Move an execution to `to` if its current status allows it; True when this call did."""
        if allowed_from is None:
            allowed_from = [s for s, nexts in TRANSITIONS.items() if to in nexts]
        pairs: list[str] = []
        for name, value in _encode(fields or {}).items():
            pairs += [name, value]
        result = self._transition(
            keys=[
                self.record_key(execution_id),
                self.lease_key(execution_id),
                self.RUNNING_KEY,
                self.events_channel(execution_id),
                self.ACTIVE_KEY,
            ],
            args=[json.dumps([s.value for s in allowed_from]), to.value, lease_owner, int(lease_seconds * 1000), *pairs],
        )
        return bool(result == 1)

    def finish(self, execution_id: str, to: Status, fields: dict[str, Any] | None = None) -> bool:
        """Record a terminal result, stamping the finish time."""
        return self.transition(execution_id, to, {"finished_at": utcnow().isoformat(), **(fields or {})})

    # Leases: a worker running an execution keeps its lease alive ----------
    def renew_lease(self, execution_id: str, owner: str, seconds: float) -> bool:
        return bool(self._renew(keys=[self.lease_key(execution_id)], args=[owner, int(seconds * 1000)]) == 1)

    def lease_holder(self, execution_id: str) -> str | None:
        return cast(str | None, self.redis.get(self.lease_key(execution_id)))

    def running_ids(self) -> list[str]:
        prefix = self.record_key("")
        return [key.removeprefix(prefix) for key in cast(list[str], self.redis.zrange(self.RUNNING_KEY, 0, -1))]

    def count_queued(self) -> int:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zcard(self.ACTIVE_KEY)
            pipe.zcard(self.RUNNING_KEY)
            active, running = pipe.execute()
        return max(0, int(active) - int(running))

    def count_active(self, owner: str) -> int:
        """Queued and running executions of one owner."""
        return int(self.redis.scard(f"{self.ACTIVE_KEY}:{owner}"))

    # Notifications --------------------------------------------------------
    def wait_until_terminal(self, execution_id: str, timeout: float) -> Execution | None:
        """Block on the record's channel until it is terminal or `timeout` passes."""
        deadline = time.monotonic() + timeout
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self.events_channel(execution_id))
            # Read after subscribing, so a transition in between is not missed.
            execution = self.get(execution_id)
            while execution is not None and not execution.status.terminal:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                message = pubsub.get_message(timeout=remaining)
                if message and Status(message["data"]).terminal:
                    execution = self.get(execution_id)
            return execution
        finally:
            pubsub.close()

    def ping(self) -> bool:
        return bool(self.redis.ping())


def _encode(fields: dict[str, Any]) -> dict[str, str]:
    return {name: json.dumps(value) for name, value in fields.items()}


def _decode(raw: dict[str, str]) -> Execution:
    return Execution.model_validate({name: json.loads(value) for name, value in raw.items()})
