"""Garbage collection of the sandbox namespace, and recovery of executions whose worker died."""

from __future__ import annotations

import logging
from collections.abc import Callable

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from executioner.kube import EXECUTION_LABEL, POOL_STATE_LABEL, POOL_WAITING, SANDBOX_SELECTOR
from executioner.store import ExecutionStore
from executioner.worker.backends.kubernetes import KubernetesBackend
from executioner.worker.executor import sweep_lost_executions

log = logging.getLogger(__name__)


def sweep(store: ExecutionStore, backend: KubernetesBackend) -> dict[str, list[str]]:
    """One pass: resolve lost executions, then delete every sandbox object whose result is recorded.

    Returns what it did, by kind, for logs and tests.
    """
    done: dict[str, list[str]] = {
        "recovered": sweep_lost_executions(store, backend),
        "jobs": [],
        "pods": [],
        "secrets": [],
    }
    namespace = backend.namespace
    # Pods and Secrets are listed before Jobs: each is made after its Job, so one listed here whose Job is missing
    # from the later Job listing has truly lost its Job. Listed the other way round, a Job made between the two
    # listings would have its fresh Secrets deleted from under its pod.
    pods = backend.core.list_namespaced_pod(namespace, label_selector=SANDBOX_SELECTOR).items
    secrets = backend.core.list_namespaced_secret(namespace, label_selector=SANDBOX_SELECTOR).items
    jobs = backend.batch.list_namespaced_job(namespace, label_selector=SANDBOX_SELECTOR).items
    live_jobs: set[str] = set()
    for job in jobs:
        labels = job.metadata.labels or {}
        if labels.get(POOL_STATE_LABEL) == POOL_WAITING:
            live_jobs.add(job.metadata.name)  # a warm pool's: the refiller looks after it
            continue
        execution_id = labels.get(EXECUTION_LABEL, "")
        execution = store.get(execution_id) if execution_id else None
        if execution is None or execution.status.terminal:
            # Its result is recorded (or it belongs to nobody): it has nothing left to do. A claimed pool Job names
            # its execution too, so one whose worker died goes here the same way.
            _delete(backend.batch.delete_namespaced_job, job.metadata.name, namespace)
            done["jobs"].append(job.metadata.name)
        else:
            live_jobs.add(job.metadata.name)
    for pod in pods:
        if _owner_job(pod.metadata) not in live_jobs:
            _delete(backend.core.delete_namespaced_pod, pod.metadata.name, namespace)
            done["pods"].append(pod.metadata.name)
    for secret in secrets:
        if _owner_job(secret.metadata) not in live_jobs:
            _delete(backend.core.delete_namespaced_secret, secret.metadata.name, namespace)
            done["secrets"].append(secret.metadata.name)
    return done


def _owner_job(metadata: client.V1ObjectMeta) -> str | None:
    for owner in metadata.owner_references or []:
        if owner.kind == "Job":
            return owner.name
    # A pod's Job is also named by its job-name label.
    return (metadata.labels or {}).get("job-name")


def _delete(call: Callable[..., object], name: str, namespace: str) -> None:
    try:
        call(name, namespace, propagation_policy="Background", grace_period_seconds=0)
    except ApiException as exc:
        if exc.status != 404:
            log.warning("could not delete %s/%s: %s", namespace, name, exc.reason)
