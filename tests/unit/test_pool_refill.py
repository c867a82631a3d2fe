"""The warm pool's refiller decides what to create and delete from a listing of the pool Jobs (a fake API here;
tests/backends/test_kubernetes_pool.py runs it against the real cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from executioner.kube import POOL_CLAIMED, POOL_LABEL, POOL_STATE_LABEL, POOL_TEMPLATE_LABEL, POOL_WAITING
from executioner.operator.pool import PoolRefiller
from executioner.settings import Settings
from executioner.worker.backends.sandbox_pods import pool_template

SETTINGS = Settings(backend="kubernetes", kubernetes_pool_sizes={"python": 2, "python-data": 1})
AGE = datetime(2026, 1, 1, tzinfo=UTC)


def job(name: str, runtime: str = "python", state: str = POOL_WAITING, template: str | None = None, **status):
    template = template or pool_template(runtime, SETTINGS)
    return client.V1Job(
        metadata=client.V1ObjectMeta(
            name=name,
            resource_version=f"rv-{name}",
            creation_timestamp=AGE + timedelta(seconds=len(name)),
            labels={POOL_LABEL: runtime, POOL_STATE_LABEL: state, POOL_TEMPLATE_LABEL: template},
        ),
        status=client.V1JobStatus(**status),
    )


class FakeBatch:
    def __init__(self, jobs, conflicts=()):
        self.jobs = jobs
        self.conflicts = set(conflicts)
        self.created: list[dict] = []
        self.deleted: list[str] = []

    def list_namespaced_job(self, namespace, label_selector=None):
        assert label_selector == POOL_LABEL
        return client.V1JobList(items=self.jobs, metadata=client.V1ListMeta(resource_version="42"))

    def create_namespaced_job(self, namespace, body):
        self.created.append(body)

    def delete_namespaced_job(self, name, namespace, body=None):
        # the refiller deletes only what it listed: a Job claimed since then fails the precondition
        assert body.preconditions.resource_version == f"rv-{name}"
        if name in self.conflicts:
            raise ApiException(status=409, reason="Conflict")
        self.deleted.append(name)


def runtimes_created(batch: FakeBatch) -> list[str]:
    return sorted(body["metadata"]["labels"][POOL_LABEL] for body in batch.created)


def test_an_empty_pool_is_filled_to_each_runtime_size_from_the_current_template():
    batch = FakeBatch([])
    assert PoolRefiller(SETTINGS, batch).refill() == "42"
    assert runtimes_created(batch) == ["python", "python", "python-data"]
    for body in batch.created:
        runtime = body["metadata"]["labels"][POOL_LABEL]
        assert body["metadata"]["labels"][POOL_TEMPLATE_LABEL] == pool_template(runtime, SETTINGS)
        assert body["metadata"]["labels"][POOL_STATE_LABEL] == POOL_WAITING


def test_claimed_jobs_are_replaced_and_left_to_their_worker():
    batch = FakeBatch([job("a", state=POOL_CLAIMED), job("b"), job("d", runtime="python-data")])
    PoolRefiller(SETTINGS, batch).refill()
    assert runtimes_created(batch) == ["python"] and batch.deleted == []


def test_dead_outdated_and_surplus_waiting_jobs_are_deleted_and_replaced():
    batch = FakeBatch(
        [
            job("dead", failed=1),  # its pod died while it waited
            job("old", template="0ld"),  # made before an upgrade changed the pod template
            job("p1"),
            job("p22"),
            job("p333"),  # one more than the size: the newest goes
            job("d", runtime="python-data"),
        ]
    )
    PoolRefiller(SETTINGS, batch).refill()
    assert sorted(batch.deleted) == ["dead", "old", "p333"]
    assert batch.created == []


def test_a_job_claimed_between_listing_and_deletion_is_kept():
    batch = FakeBatch([job("dead", failed=1), job("p1"), job("d", runtime="python-data")], conflicts={"dead"})
    PoolRefiller(SETTINGS, batch).refill()  # no error: the worker that claimed it deletes it
    assert batch.deleted == [] and runtimes_created(batch) == ["python"]


def test_pools_of_runtimes_this_deployment_does_not_keep_are_left_alone():
    settings = Settings(backend="kubernetes", kubernetes_pool_sizes={"python": 1})
    other = job("d", runtime="python-data", template="anything")
    batch = FakeBatch([job("p", template=pool_template("python", settings)), other])
    PoolRefiller(settings, batch).refill()
    assert batch.deleted == [] and batch.created == []


def test_without_a_pool_no_refiller_runs():
    refiller = PoolRefiller(Settings(backend="kubernetes"), FakeBatch([]))
    refiller.start()
    assert refiller._thread is None
