"""Execution records in Redis, changed only through compare-and-set transitions.

Each record is a hash whose fields hold JSON values. A Lua script checks the
current status and applies a transition atomically, so a redelivered Celery
message, a second worker or the operator can never write a second result.
Every transition is published on the record's channel; `?wait` blocks on it. Every transition is also appended to
the execution's event stream (a Redis Stream; live output goes there too, see streams.py), in the same atomic step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.client import NEVER_DECODE

from executioner.artifacts import keep_artifacts
from executioner.files import decoded
from executioner.models import SUMMARY_FIELDS, TRANSITIONS, Execution, ExecutionSummary, Outcome, Status, utcnow
from executioner.settings import Settings

PREFIX = "executioner"
# Deployment-wide counters (see metrics.py): the transition script counts terminal statuses here.
METRICS_KEY = f"{PREFIX}:metrics"

# Bytes an owner keeps in the store are counted per owner: a counter, and a sorted set whose members
# ("<id>:<in|out>:<bytes>") are scored by when their record expires, so expired bytes can be given back.
_RELEASE_EXPIRED_LUA = """
local function release_expired(usage, counter, now)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', usage, '-inf', now)) do
    redis.call('DECRBY', counter, tonumber(string.match(member, ':(%d+)$')))
  end
  redis.call('ZREMRANGEBYSCORE', usage, '-inf', now)
end
local function hold(usage, counter, member, bytes, expire_at, ttl)
  if bytes <= 0 then return end
  redis.call('ZADD', usage, expire_at, member)
  redis.call('INCRBY', counter, bytes)
  redis.call('EXPIRE', usage, ttl)
  redis.call('EXPIRE', counter, ttl)
end
"""

# Admission and creation in one step, so concurrent requests cannot all pass a cap before any is counted.
# Appends a status event to the execution's event stream, which lives as long as its record.
_STATUS_EVENT_LUA = """
local function status_event(stream, status, ttl)
  redis.call('XADD', stream, 'MAXLEN', '~', 10000, '*', 'event', 'status', 'data', cjson.encode({status = status}))
  if ttl > 0 then redis.call('EXPIRE', stream, ttl) end
end
"""

# KEYS: record, owner index, active set, owner's active set, events channel, running set, owner usage, owner counter,
#       event stream
# ARGV: max queued, max active for the owner, byte budget (0 = off), input bytes, retention seconds,
#       created-at score, execution id, then field/value pairs (values JSON-encoded)
# Returns {"created"} or {refusal reason, the number that refused it}.
_CREATE_LUA = (
    _RELEASE_EXPIRED_LUA
    + _STATUS_EVENT_LUA
    + """
local max_queued, max_active, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local bytes, retention, score = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local now = tonumber(redis.call('TIME')[1])
if max_queued > 0 then
  local queued = redis.call('ZCARD', KEYS[3]) - redis.call('ZCARD', KEYS[6])
  if queued >= max_queued then return {'queue_full', queued} end
end
if max_active > 0 then
  local active = redis.call('SCARD', KEYS[4])
  if active >= max_active then return {'active_cap', active} end
end
release_expired(KEYS[7], KEYS[8], now)
if budget > 0 then
  local used = tonumber(redis.call('GET', KEYS[8]) or '0')
  if used + bytes > budget then return {'byte_budget', used} end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('EXPIRE', KEYS[1], retention)
redis.call('ZADD', KEYS[2], score, ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', score - retention)
redis.call('EXPIRE', KEYS[2], retention)
redis.call('ZADD', KEYS[3], score, KEYS[1])
redis.call('SADD', KEYS[4], KEYS[1])
hold(KEYS[7], KEYS[8], ARGV[7] .. ':in:' .. bytes, bytes, now + retention, retention)
status_event(KEYS[9], 'queued', retention)
redis.call('PUBLISH', KEYS[5], 'queued')
return {'created', 0}
"""
)

# KEYS: record, lease, running set, events channel, active set (per-owner sets are "<active>:<owner>"),
#       usage prefix (the owner's usage set and counter are "<prefix>:<owner>" and "<prefix>-bytes:<owner>"),
#       metrics hash, finished set (records by finish time, for the payload retention), event stream, artifacts hash
# ARGV: allowed current statuses (JSON list), new status, lease owner ("" for none),
#       lease ttl ms, output bytes to count against the owner (artifacts included), payload retention seconds,
#       number of artifacts n, then n artifact path/bytes pairs, then field/value pairs (values JSON-encoded)
# A terminal transition stores the artifacts in the same atomic step as the result: a worker dying half-way leaves
# neither, and an execution that was already final (cancelled meanwhile) stores none.
_TRANSITION_LUA = (
    _RELEASE_EXPIRED_LUA
    + _STATUS_EVENT_LUA
    + """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return -1 end
current = cjson.decode(current)
local allowed = false
for _, status in ipairs(cjson.decode(ARGV[1])) do
  if status == current then allowed = true end
end
if not allowed then return 0 end
local artifacts = tonumber(ARGV[7])
redis.call('HSET', KEYS[1], 'status', cjson.encode(ARGV[2]), unpack(ARGV, 8 + 2 * artifacts))
if ARGV[2] == 'running' then
  redis.call('ZADD', KEYS[3], redis.call('TIME')[1], KEYS[1])
  if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4]) end
elseif ARGV[2] ~= 'queued' then
  local owner = cjson.decode(redis.call('HGET', KEYS[1], 'owner'))
  local backend = cjson.decode(redis.call('HGET', KEYS[1], 'backend') or '""')
  redis.call('HINCRBY', KEYS[7], 'executions_total|' .. ARGV[2] .. '|' .. backend, 1)
  redis.call('ZREM', KEYS[3], KEYS[1])
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[5], KEYS[1])
  redis.call('SREM', KEYS[5] .. ':' .. owner, KEYS[1])
  redis.call('ZADD', KEYS[8], redis.call('TIME')[1], KEYS[1])
  local ttl = redis.call('TTL', KEYS[1])
  if ttl > 0 then
    local id = string.match(KEYS[1], '([^:]+)$')
    hold(KEYS[6] .. ':' .. owner, KEYS[6] .. '-bytes:' .. owner, id .. ':out:' .. ARGV[5], tonumber(ARGV[5]),
         tonumber(redis.call('TIME')[1]) + ttl, ttl)
  end
  if artifacts > 0 then
    -- gone with the rest of the payload (drop_expired_payloads), and by themselves should no sweeper run
    redis.call('DEL', KEYS[10])
    redis.call('HSET', KEYS[10], unpack(ARGV, 8, 7 + 2 * artifacts))
    local payload_ttl = tonumber(ARGV[6])
    if ttl > 0 and ttl < payload_ttl then payload_ttl = ttl end
    redis.call('EXPIRE', KEYS[10], payload_ttl)
  end
end
status_event(KEYS[9], ARGV[2], redis.call('TTL', KEYS[1]))
redis.call('PUBLISH', KEYS[4], ARGV[2])
return 1
"""
)

# Drops a finished record's code, input, files, output and artifacts (the record itself stays until its own
# retention ends) and gives their bytes back to the owner's budget.
# KEYS: record, finished set, usage prefix, artifacts hash. ARGV: execution id.
_DROP_PAYLOAD_LUA = """
redis.call('ZREM', KEYS[2], KEYS[1])
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 0 end
owner = cjson.decode(owner)
redis.call('HSET', KEYS[1], 'code', '""', 'stdin', '""', 'stdout', '""', 'stderr', '""', 'files', '[]',
           'artifacts', '[]', 'payload_expired', 'true')
redis.call('DEL', KEYS[4])
local usage, counter = KEYS[3] .. ':' .. owner, KEYS[3] .. '-bytes:' .. owner
local cursor = '0'
repeat
  local page = redis.call('ZSCAN', usage, cursor, 'MATCH', ARGV[1] .. ':*', 'COUNT', 500)
  cursor = page[1]
  for i = 1, #page[2], 2 do
    redis.call('DECRBY', counter, tonumber(string.match(page[2][i], ':(%d+)$')))
    redis.call('ZREM', usage, page[2][i])
  end
until cursor == '0'
return 1
"""

# Extends a lease only while the caller still holds it.
# A lease that lapsed while its holder could not reach Redis (Redis restarting, say) is taken again, as long as
# nobody has ended the execution meanwhile. KEYS: lease, record. ARGV: holder, ttl ms.
_RENEW_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not holder then
  local status = redis.call('HGET', KEYS[2], 'status')
  if status and cjson.decode(status) == 'running' then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
  end
end
return 0
"""


@dataclass(frozen=True)
class Caps:
    """What one new execution may not exceed, checked atomically with its creation; 0 turns a cap off."""

    max_queued: int = 0
    max_active_for_owner: int = 0
    byte_budget_for_owner: int = 0


@dataclass(frozen=True)
class CapReached:
    """Why the store refused to create an execution: which cap, and the count that reached it."""

    cap: str  # "queue_full", "active_cap" or "byte_budget"
    current: int


@dataclass(frozen=True)
class ArtifactCaps:
    """How many artifacts a result keeps and their bytes together (EXECUTIONER_MAX_ARTIFACTS, _MAX_ARTIFACT_BYTES)."""

    max_count: int = Settings.model_fields["max_artifacts"].default
    max_bytes: int = Settings.model_fields["max_artifact_bytes"].default


class ExecutionStore:
    def __init__(
        self,
        client: redis.Redis,
        retention_seconds: int,
        payload_retention_seconds: int | None = None,
        artifact_caps: ArtifactCaps = ArtifactCaps(),
    ):
        """`client` must decode responses (str, not bytes): use from_url. Records live `retention_seconds`; their
        code, input, output and artifacts only `payload_retention_seconds` after they finish (see
        drop_expired_payloads)."""
        self.redis = client
        self.retention_seconds = retention_seconds
        self.payload_retention_seconds = min(payload_retention_seconds or retention_seconds, retention_seconds)
        self.artifact_caps = artifact_caps
        self._drop_payload = client.register_script(_DROP_PAYLOAD_LUA)
        self._transition = client.register_script(_TRANSITION_LUA)
        self._create = client.register_script(_CREATE_LUA)
        self._renew = client.register_script(_RENEW_LUA)

    @classmethod
    def from_url(
        cls,
        url: str,
        retention_seconds: int,
        payload_retention_seconds: int | None = None,
        artifact_caps: ArtifactCaps = ArtifactCaps(),
    ) -> ExecutionStore:
        client = redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)
        return cls(client, retention_seconds, payload_retention_seconds, artifact_caps)

    @classmethod
    def from_settings(cls, settings: Settings) -> ExecutionStore:
        caps = ArtifactCaps(settings.max_artifacts, settings.max_artifact_bytes)
        return cls.from_url(settings.redis_url, settings.retention_seconds, settings.payload_retention_seconds, caps)

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
    def event_stream_key(execution_id: str) -> str:
        """The execution's events (status transitions, live output chunks) as a Redis Stream; see streams.py."""
        return f"{PREFIX}:stream:{execution_id}"

    @staticmethod
    def output_channel(execution_id: str) -> str:
        """Announces new output chunks in the event stream (statuses are announced on events_channel)."""
        return f"{PREFIX}:output:{execution_id}"

    @staticmethod
    def artifacts_key(execution_id: str) -> str:
        """The execution's artifacts: a hash of path -> bytes, kept as long as its payload."""
        return f"{PREFIX}:artifacts:{execution_id}"

    @staticmethod
    def index_key(owner: str) -> str:
        return f"{PREFIX}:index:{owner}"

    @staticmethod
    def usage_keys(owner: str) -> tuple[str, str]:
        """The owner's stored-bytes ledger: a set of holdings scored by expiry, and their sum."""
        return f"{PREFIX}:usage:{owner}", f"{PREFIX}:usage-bytes:{owner}"

    USAGE_PREFIX = f"{PREFIX}:usage"
    RUNNING_KEY = f"{PREFIX}:running"
    # Finished records by finish time, so their payloads can be dropped before the records expire.
    FINISHED_KEY = f"{PREFIX}:finished"
    # Every execution not yet final, and per owner ("<ACTIVE_KEY>:<owner>"), for admission caps.
    ACTIVE_KEY = f"{PREFIX}:active"

    # Records --------------------------------------------------------------
    def create(self, execution: Execution, caps: Caps = Caps()) -> CapReached | None:
        """Store a new queued execution unless a cap says no; the check and the write are one atomic step."""
        key = self.record_key(execution.id)
        usage, counter = self.usage_keys(execution.owner)
        pairs: list[str] = []
        for name, value in _encode(execution.model_dump(mode="json")).items():
            pairs += [name, value]
        reason, current = self._create(
            keys=[
                key,
                self.index_key(execution.owner),
                self.ACTIVE_KEY,
                f"{self.ACTIVE_KEY}:{execution.owner}",
                self.events_channel(execution.id),
                self.RUNNING_KEY,
                usage,
                counter,
                self.event_stream_key(execution.id),
            ],
            args=[
                caps.max_queued,
                caps.max_active_for_owner,
                caps.byte_budget_for_owner,
                input_bytes(execution),
                self.retention_seconds,
                execution.created_at.timestamp(),
                execution.id,
                *pairs,
            ],
        )
        return None if reason == "created" else CapReached(str(reason), int(current))

    def stored_bytes(self, owner: str) -> int:
        """Bytes of code, input (files included), output and artifacts the owner's retained records hold (as last
        counted)."""
        return int(cast(str | None, self.redis.get(self.usage_keys(owner)[1])) or 0)

    def get(self, execution_id: str) -> Execution | None:
        raw = cast(dict[str, str], self.redis.hgetall(self.record_key(execution_id)))
        return decode_record(raw) if raw else None

    def page(self, owner: str, limit: int, offset: int = 0) -> tuple[list[ExecutionSummary], bool]:
        """One owner's executions as summaries (their code, input and output stay in Redis), newest first;
        also says whether more records follow."""
        ids = cast(list[str], self.redis.zrevrange(self.index_key(owner), offset, offset + limit))
        with self.redis.pipeline(transaction=False) as pipe:
            for execution_id in ids[:limit]:
                pipe.hmget(self.record_key(execution_id), SUMMARY_FIELDS)
            rows = pipe.execute()
        summaries = [
            ExecutionSummary.model_validate(
                {name: json.loads(value) for name, value in zip(SUMMARY_FIELDS, row, strict=True) if value is not None}
            )
            for row in rows
            if row[0] is not None  # expired between the index read and this one
        ]
        return summaries, len(ids) > limit

    def transition(
        self,
        execution_id: str,
        to: Status,
        fields: dict[str, Any] | None = None,
        *,
        allowed_from: Iterable[Status] | None = None,
        lease_owner: str = "",
        lease_seconds: float = 0,
        artifacts: dict[str, bytes] | None = None,
    ) -> bool:
        """Move an execution to `to` if its current status allows it; True when this call did. A terminal
        transition stores `artifacts` (path -> bytes) with the result, in the same atomic step."""
        if allowed_from is None:
            allowed_from = [s for s, nexts in TRANSITIONS.items() if to in nexts]
        pairs: list[str] = []
        for name, value in _encode(fields or {}).items():
            pairs += [name, value]
        fields = fields or {}
        output_bytes = sum(len(str(fields.get(stream) or "").encode()) for stream in ("stdout", "stderr"))
        artifacts = artifacts if to.terminal else None
        artifact_pairs: list[str | bytes] = []
        for path, data in (artifacts or {}).items():
            artifact_pairs += [path, data]
            output_bytes += len(data)
        result = self._transition(
            keys=[
                self.record_key(execution_id),
                self.lease_key(execution_id),
                self.RUNNING_KEY,
                self.events_channel(execution_id),
                self.ACTIVE_KEY,
                self.USAGE_PREFIX,
                METRICS_KEY,
                self.FINISHED_KEY,
                self.event_stream_key(execution_id),
                self.artifacts_key(execution_id),
            ],
            args=[
                json.dumps([s.value for s in allowed_from]),
                to.value,
                lease_owner,
                int(lease_seconds * 1000),
                output_bytes,
                self.payload_retention_seconds,
                len(artifact_pairs) // 2,
                *artifact_pairs,
                *pairs,
            ],
        )
        return bool(result == 1)

    def finish(
        self,
        execution_id: str,
        to: Status,
        fields: dict[str, Any] | None = None,
        artifacts: dict[str, bytes] | None = None,
    ) -> bool:
        """Record a terminal result (and its artifacts, path -> bytes), stamping the finish time."""
        fields = {"finished_at": utcnow().isoformat(), **(fields or {})}
        return self.transition(execution_id, to, fields, artifacts=artifacts)

    def record_outcome(self, execution_id: str, outcome: Outcome) -> bool:
        """Record what a backend reported, its artifacts within the deployment's caps; True when this call did
        (False: the execution was already final)."""
        kept = keep_artifacts(
            outcome.artifacts, outcome.artifacts_truncated, self.artifact_caps.max_count, self.artifact_caps.max_bytes
        )
        fields = {**outcome.result_fields(), "artifacts": kept.listing(), "artifacts_truncated": kept.truncated}
        return self.finish(execution_id, outcome.status, fields, artifacts=kept.contents)

    def artifact(self, execution_id: str, path: str) -> bytes | None:
        """One artifact's bytes; None when the execution has no such artifact (or no longer has it)."""
        # The client decodes answers to str; artifacts are bytes, so this one answer is read undecoded.
        key = self.artifacts_key(execution_id)
        data = self.redis.execute_command("HGET", key, path, **{NEVER_DECODE: True})  # type: ignore[no-untyped-call]
        return cast(bytes | None, data)

    # Leases: a worker running an execution keeps its lease alive ----------
    def renew_lease(self, execution_id: str, owner: str, seconds: float) -> bool:
        keys = [self.lease_key(execution_id), self.record_key(execution_id)]
        return bool(self._renew(keys=keys, args=[owner, int(seconds * 1000)]) == 1)

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

    def queued_ids_older_than(self, seconds: float, limit: int = 1000) -> list[str]:
        """Executions still `queued` that were created more than `seconds` ago (oldest first)."""
        prefix = self.record_key("")
        cutoff = time.time() - seconds
        keys = cast(list[str], self.redis.zrangebyscore(self.ACTIVE_KEY, "-inf", cutoff, start=0, num=limit))
        if not keys:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(key, "status")
            statuses = pipe.execute()
        queued = json.dumps(Status.queued.value)  # fields are stored JSON-encoded
        return [key.removeprefix(prefix) for key, status in zip(keys, statuses, strict=True) if status == queued]

    def claim_redispatch(self, execution_id: str, seconds: float) -> bool:
        """True for one caller per `seconds` per execution: workers sweeping together send one message, not many."""
        return bool(self.redis.set(f"{PREFIX}:redispatch:{execution_id}", "1", nx=True, ex=max(1, int(seconds))))

    def count_active(self, owner: str) -> int:
        """Queued and running executions of one owner."""
        return int(self.redis.scard(f"{self.ACTIVE_KEY}:{owner}"))

    def reconcile_indexes(self) -> int:
        """Drop index entries whose record is gone (expired or deleted), so a cap never counts a dead slot.
        Returns how many were dropped."""
        dropped = 0
        for index in (self.ACTIVE_KEY, self.RUNNING_KEY):
            dropped += self._drop_missing(index, cast(list[str], self.redis.zrange(index, 0, -1)), self.redis.zrem)
        for owner_set in self.redis.scan_iter(match=f"{self.ACTIVE_KEY}:*", count=500):
            members = cast(list[str], list(self.redis.smembers(owner_set)))
            dropped += self._drop_missing(owner_set, members, self.redis.srem)
        return dropped

    def _drop_missing(self, index: str, record_keys: list[str], remove: Any) -> int:
        if not record_keys:
            return 0
        with self.redis.pipeline(transaction=False) as pipe:
            for key in record_keys:
                pipe.exists(key)
            missing = [key for key, exists in zip(record_keys, pipe.execute(), strict=True) if not exists]
        if missing:
            remove(index, *missing)
        return len(missing)

    def drop_expired_payloads(self) -> int:
        """Drop code, input, files, output and artifacts of records finished more than the payload retention ago (and forget
        finished entries whose record is gone); returns how many records it changed."""
        cutoff = time.time() - self.payload_retention_seconds
        keys = cast(list[str], self.redis.zrangebyscore(self.FINISHED_KEY, "-inf", cutoff, start=0, num=1000))
        prefix = self.record_key("")
        dropped = 0
        for key in keys:
            execution_id = key.removeprefix(prefix)
            keys = [key, self.FINISHED_KEY, self.USAGE_PREFIX, self.artifacts_key(execution_id)]
            dropped += int(self._drop_payload(keys=keys, args=[execution_id]))
            self.redis.delete(self.event_stream_key(execution_id))  # its output chunks are payload too
        return dropped

    def memory(self) -> tuple[int, int]:
        """Redis's used memory and its maxmemory (0 when unbounded), in bytes."""
        info = self.redis.info("memory")
        return int(info["used_memory"]), int(info.get("maxmemory", 0))

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


def input_bytes(execution: Execution) -> int:
    """What an execution's input costs its owner's byte budget: code and stdin, encoded, and its files' bytes."""
    files = sum(len(decoded(file)) for file in execution.files)
    return len(execution.code.encode()) + len(execution.stdin.encode()) + files


def _encode(fields: dict[str, Any]) -> dict[str, str]:
    return {name: json.dumps(value) for name, value in fields.items()}


def decode_record(raw: dict[str, str]) -> Execution:
    return Execution.model_validate({name: json.loads(value) for name, value in raw.items()})
