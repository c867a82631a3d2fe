"""The executor records a run's artifacts with its result, and only then: a run whose execution was ended meanwhile
(cancelled, or resolved as lost) leaves no artifact behind. A real Redis; a backend whose outcome the test chooses."""

from __future__ import annotations

import base64

import pytest

from executioner.models import ArtifactContent, Outcome, Status
from executioner.settings import Settings
from executioner.store import ExecutionStore
from executioner.worker.active import ActiveExecutions
from executioner.worker.executor import execute
from helpers.records import new_record
from helpers.stack import start_redis, stop


class ArtifactBackend:
    """Reports `artifacts` (path -> bytes); `during_run` runs while the "program" runs."""

    name = "artifacts"

    def __init__(self, artifacts: dict[str, bytes], during_run=None):
        self.artifacts = artifacts
        self.during_run = during_run

    def run(self, execution, output=None):
        if self.during_run:
            self.during_run(execution)
        contents = [
            ArtifactContent(path=p, content_base64=base64.b64encode(d).decode()) for p, d in self.artifacts.items()
        ]
        return Outcome(status=Status.succeeded, exit_code=0, artifacts=contents)

    def cancel(self, execution_id):
        pass

    def cleanup(self, execution_id):
        pass

    def recover(self, execution):
        return None


@pytest.fixture(scope="module")
def private_store(tmp_path_factory):
    """A Redis of its own: the session stack's sweeper would resolve these lease-less records."""
    url, process = start_redis(tmp_path_factory.mktemp("executor-redis"))
    settings = Settings(redis_url=url, max_artifacts=2, max_artifact_bytes=1000, lease_seconds=5)
    store = ExecutionStore.from_settings(settings)
    yield store, settings
    store.redis.close()
    stop(process)


def run(store, settings, backend, execution_id):
    return execute(execution_id, store, backend, settings, ActiveExecutions(store, backend, settings.lease_seconds))


def test_the_result_lists_the_artifacts_within_the_deployments_caps(private_store):
    store, settings = private_store
    execution = new_record(store)
    backend = ArtifactBackend({"a.png": b"\x89PNG" * 10, "b.csv": b"1,2\n", "c.txt": b"over the count cap"})
    assert run(store, settings, backend, execution.id) == "succeeded"
    record = store.get(execution.id)
    assert [(a.path, a.size, a.content_type) for a in record.artifacts] == [
        ("a.png", 40, "image/png"),
        ("b.csv", 4, "text/csv"),
    ]
    assert record.artifacts_truncated
    assert store.artifact(execution.id, "a.png") == b"\x89PNG" * 10 and store.artifact(execution.id, "c.txt") is None


def test_a_run_cancelled_meanwhile_stores_no_artifacts(private_store):
    store, settings = private_store
    execution = new_record(store)

    def cancel(_execution):
        assert store.finish(execution.id, Status.cancelled, {"error": "cancelled by request"})

    assert run(store, settings, ArtifactBackend({"plot.png": b"png"}, during_run=cancel), execution.id) == "superseded"
    record = store.get(execution.id)
    assert record.status is Status.cancelled and record.artifacts == []
    assert not store.redis.exists(store.artifacts_key(execution.id))
