"""Artifacts and input files in the store, on a real Redis: stored with the result in one step, counted against
the owner's byte budget, and gone with the rest of the payload."""

from __future__ import annotations

import base64
import time
import uuid

from executioner.models import ArtifactContent, Execution, InputFile, Limits, Outcome, Status
from executioner.store import ArtifactCaps, ExecutionStore
from helpers.records import new_record

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # binary, every byte value


def reported(path: str, data: bytes) -> ArtifactContent:
    return ArtifactContent(path=path, content_base64=base64.b64encode(data).decode())


def finished_with(store: ExecutionStore, execution: Execution, *artifacts: ArtifactContent, **fields) -> bool:
    store.transition(execution.id, Status.running)
    outcome = Outcome(status=Status.succeeded, exit_code=0, artifacts=list(artifacts), **fields)
    return store.record_outcome(execution.id, outcome)


def test_artifacts_are_stored_byte_for_byte_and_listed_in_the_record(store):
    execution = new_record(store)
    assert finished_with(store, execution, reported("plot.png", PNG), reported("tables/summary.csv", b"a,b\n1,2\n"))
    record = store.get(execution.id)
    assert [a.model_dump() for a in record.artifacts] == [
        {"path": "plot.png", "size": len(PNG), "content_type": "image/png"},
        {"path": "tables/summary.csv", "size": 8, "content_type": "text/csv"},
    ]
    assert not record.artifacts_truncated
    assert store.artifact(execution.id, "plot.png") == PNG
    assert store.artifact(execution.id, "tables/summary.csv") == b"a,b\n1,2\n"
    assert store.artifact(execution.id, "missing.png") is None
    # the public document lists them, never their bytes
    assert "content_base64" not in record.public().model_dump_json()


def test_the_store_holds_artifacts_to_the_caps_whatever_the_sandbox_reports(private_redis_url):
    store = ExecutionStore.from_url(private_redis_url, 3600, artifact_caps=ArtifactCaps(max_count=2, max_bytes=100))
    execution = new_record(store)
    finished_with(
        store,
        execution,
        reported("a.txt", b"a" * 60),
        reported("../escape.txt", b"x"),  # never a path outside outputs/
        reported("b.txt", b"b" * 60),  # past the bytes cap
        reported("c.txt", b"c" * 10),
        reported("d.txt", b"d"),  # past the count cap
    )
    record = store.get(execution.id)
    assert [a.path for a in record.artifacts] == ["a.txt", "c.txt"]
    assert record.artifacts_truncated
    assert store.artifact(execution.id, "../escape.txt") is None


def test_an_execution_already_final_stores_no_artifacts(store):
    execution = new_record(store)
    store.transition(execution.id, Status.running)
    assert store.finish(execution.id, Status.cancelled, {"error": "cancelled by request"})
    late = Outcome(status=Status.succeeded, artifacts=[reported("plot.png", PNG)])
    assert not store.record_outcome(execution.id, late)
    assert store.get(execution.id).artifacts == []
    assert not store.redis.exists(store.artifacts_key(execution.id))


def test_artifacts_and_files_count_against_the_owner_and_go_with_the_payload(private_redis_url):
    store = ExecutionStore.from_url(private_redis_url, retention_seconds=3600, payload_retention_seconds=1)
    owner = "artifacts-" + uuid.uuid4().hex
    data_file = InputFile(path="data.csv", content_base64=base64.b64encode(b"x,y\n" * 250).decode())
    execution = Execution.new(
        code="print(1)",
        limits=Limits(timeout_seconds=5, memory_mb=128),
        backend="local",
        owner=owner,
        files=[data_file],
    )
    assert store.create(execution) is None
    assert store.stored_bytes(owner) == len("print(1)") + 1000  # the file's bytes, not its base64
    finished_with(store, execution, reported("plot.png", PNG), stdout="ok\n")
    assert store.stored_bytes(owner) == len("print(1)") + 1000 + len("ok\n") + len(PNG)
    # The artifacts expire by themselves with the payload, should no sweeper come.
    assert 0 < store.redis.ttl(store.artifacts_key(execution.id)) <= 1
    time.sleep(1.5)
    assert store.drop_expired_payloads() >= 1
    record = store.get(execution.id)
    assert record.payload_expired and record.files == [] and record.artifacts == []
    assert record.status is Status.succeeded
    assert store.artifact(execution.id, "plot.png") is None
    assert store.stored_bytes(owner) == 0
