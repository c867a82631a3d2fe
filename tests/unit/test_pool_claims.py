"""A worker's claims from the warm pool, against a fake API (the real cluster: tests/backends/test_kubernetes_pool.py)."""

from __future__ import annotations

import logging

from kubernetes import client

from executioner.kube import POOL_TEMPLATE_LABEL
from executioner.models import Execution, Limits, Status
from executioner.settings import Settings
from executioner.worker.backends.kubernetes_pool import WarmPodClaims

SETTINGS = Settings(backend="kubernetes", kubernetes_pool_sizes={"python": 2})


class FakeBatch:
    """Pool Jobs made from another template: none matches the worker's selector, all match the plain pool one."""

    def __init__(self):
        self.selectors: list[str] = []

    def list_namespaced_job(self, namespace, label_selector=None):
        self.selectors.append(label_selector)
        other = client.V1Job(
            metadata=client.V1ObjectMeta(name="pool-python-x", labels={POOL_TEMPLATE_LABEL: "another"}),
            status=client.V1JobStatus(ready=1),
        )
        return client.V1JobList(items=[] if POOL_TEMPLATE_LABEL in label_selector else [other])


def execution(memory_mb: int = 128) -> Execution:
    return Execution.new(
        code="print(1)",
        limits=Limits(timeout_seconds=5, memory_mb=memory_mb),
        backend="kubernetes",
        status=Status.running,
    )


def test_a_pool_made_from_another_template_is_reported_not_claimed(caplog):
    batch = FakeBatch()
    claims = WarmPodClaims(SETTINGS, batch, client.CoreV1Api(client.ApiClient()))
    with caplog.at_level(logging.WARNING):
        assert claims.claim(execution()) is None
        assert claims.claim(execution()) is None
    warnings = [record.getMessage() for record in caplog.records if "another pod template" in record.getMessage()]
    assert len(warnings) == 1 and "1 waiting pods" in warnings[0]  # once a minute, not once an execution
    assert len(batch.selectors) == 3  # two claims, one look at the whole pool


def test_an_execution_without_the_runtime_default_memory_never_asks_the_pool():
    batch = FakeBatch()
    claims = WarmPodClaims(SETTINGS, batch, client.CoreV1Api(client.ApiClient()))
    assert claims.claim(execution(memory_mb=64)) is None
    assert batch.selectors == []
