"""The operator's sweep of the sandbox namespace, against a fake API whose objects appear while the sweep runs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from kubernetes import client

from executioner.kube import EXECUTION_LABEL
from executioner.models import Execution, Limits, Status
from executioner.operator.cleanup import sweep


class Namespace:
    """Jobs, pods and Secrets by name; `between_listings` runs once, right after the sweep's first listing."""

    def __init__(self, between_listings):
        self.objects: dict[str, dict[str, client.V1ObjectMeta]] = {"jobs": {}, "pods": {}, "secrets": {}}
        self.between_listings = between_listings
        self.listed = 0
        self.namespace = "sandbox"
        self.batch = SimpleNamespace(
            list_namespaced_job=lambda *a, **kw: self.listing("jobs"),
            delete_namespaced_job=lambda name, *a, **kw: self.objects["jobs"].pop(name),
        )
        self.core = SimpleNamespace(
            list_namespaced_pod=lambda *a, **kw: self.listing("pods"),
            delete_namespaced_pod=lambda name, *a, **kw: self.objects["pods"].pop(name),
            list_namespaced_secret=lambda *a, **kw: self.listing("secrets"),
            delete_namespaced_secret=lambda name, *a, **kw: self.objects["secrets"].pop(name),
        )

    def listing(self, kind: str):
        items = [SimpleNamespace(metadata=meta) for meta in self.objects[kind].values()]
        self.listed += 1
        if self.listed == 1:
            self.between_listings(self)
        return SimpleNamespace(items=items)

    def start_execution(self, execution_id: str) -> None:
        """What a worker does: the Job first, then its Secrets, then the Job controller makes the pod."""
        job = f"exec-{execution_id}"
        labels = {EXECUTION_LABEL: execution_id}
        owner = [client.V1OwnerReference(api_version="batch/v1", kind="Job", name=job, uid="u")]
        self.objects["jobs"][job] = client.V1ObjectMeta(name=job, labels=labels)
        for key in ("code", "stdin"):
            name = f"{job}-{key}"
            self.objects["secrets"][name] = client.V1ObjectMeta(name=name, labels=labels, owner_references=owner)
        self.objects["pods"][f"{job}-p"] = client.V1ObjectMeta(name=f"{job}-p", labels=labels, owner_references=owner)


class Store:
    def __init__(self, executions: dict[str, Execution]):
        self.executions = executions

    def running_ids(self):
        return []

    def get(self, execution_id: str) -> Execution | None:
        return self.executions.get(execution_id)


def execution(execution_id: str, status: Status) -> Execution:
    record = Execution.new(code="x", limits=Limits(timeout_seconds=5, memory_mb=64), backend="kubernetes")
    return record.model_copy(update={"id": execution_id, "status": status})


@pytest.mark.parametrize("first_listing_seen", ["nothing", "an older running execution"])
def test_an_execution_started_while_the_sweep_runs_keeps_its_secrets_and_pod(first_listing_seen):
    store = Store({"new": execution("new", Status.running), "old": execution("old", Status.running)})
    namespace = Namespace(between_listings=lambda ns: ns.start_execution("new"))
    if first_listing_seen != "nothing":
        namespace.start_execution("old")
    done = sweep(store, namespace)
    assert done["jobs"] == done["pods"] == done["secrets"] == [], done
    assert set(namespace.objects["secrets"]) >= {"exec-new-code", "exec-new-stdin"}
    assert "exec-new-p" in namespace.objects["pods"]


def test_finished_and_unknown_jobs_go_with_their_pods_and_secrets_while_live_ones_stay():
    store = Store({"done": execution("done", Status.succeeded), "live": execution("live", Status.running)})
    namespace = Namespace(between_listings=lambda ns: None)
    for execution_id in ("done", "live", "nobody"):
        namespace.start_execution(execution_id)
    done = sweep(store, namespace)
    assert sorted(done["jobs"]) == ["exec-done", "exec-nobody"]
    assert sorted(done["pods"]) == ["exec-done-p", "exec-nobody-p"]
    assert sorted(done["secrets"]) == [f"exec-{e}-{k}" for e in ("done", "nobody") for k in ("code", "stdin")]
    assert set(namespace.objects["jobs"]) == {"exec-live"}
    assert set(namespace.objects["secrets"]) == {"exec-live-code", "exec-live-stdin"}
