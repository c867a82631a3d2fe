"""Sandbox pods on Kubernetes: the one pod spec every sandbox runs in, a cold Job's or a warm pool's."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from executioner.kube import POOL_STATE_LABEL, POOL_TEMPLATE_LABEL, POOL_WAITING, pool_labels, waiting_pool_selector
from executioner.runner_protocol import JOB_ON_STDIN, RUNNER_PATH
from executioner.settings import Settings

CONTAINER = "sandbox"
# Name resolution fails at once instead of waiting on packets the deny-all policy drops: nothing listens on the
# pod's own loopback.
SANDBOX_DNS = {
    "dnsPolicy": "None",
    "dnsConfig": {"nameservers": ["127.0.0.1"], "options": [{"name": "attempts", "value": "1"}]},
}


def sandbox_pod_spec(
    settings: Settings,
    *,
    image: str,
    memory_mb: int,
    args: list[str],
    volumes: list[dict[str, Any]],
    mounts: list[dict[str, Any]],
    stdin: bool = False,
    cpu_request: float | None = None,
) -> dict[str, Any]:
    """A sandbox pod: the runner as its one process, non-root, read-only root, no capabilities, seccomp, no token,
    no DNS server, a memory-backed /tmp. `stdin`: the runner waits for its job there (a warm-pool pod), and
    `cpu_request` is what it reserves meanwhile (else its CPU limit)."""
    memory = f"{memory_mb}Mi"
    cpu = f"{settings.cpu_limit:g}"
    storage = f"{settings.sandbox_ephemeral_storage_mb}Mi"
    requested_cpu = f"{cpu_request:g}" if cpu_request is not None else cpu
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python3", "-I", "-S", RUNNER_PATH],
        "args": args,
        "resources": {
            # memory and storage requests equal to limits: a node never overcommits sandboxes' memory (a cold
            # sandbox's CPU request equals its limit too: Guaranteed QoS)
            "requests": {"memory": memory, "cpu": requested_cpu, "ephemeral-storage": storage},
            "limits": {"memory": memory, "cpu": cpu, "ephemeral-storage": storage},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [*mounts, {"name": "tmp", "mountPath": "/tmp"}],
    }
    if stdin:
        # stdinOnce: when the one attached worker goes, the runner reads end-of-file and the pod ends.
        container.update(stdin=True, stdinOnce=True)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": settings.sandbox_service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 0,
        **SANDBOX_DNS,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "seccompProfile": (
                {"type": "Localhost", "localhostProfile": settings.sandbox_seccomp_profile}
                if settings.sandbox_seccomp_profile
                else {"type": "RuntimeDefault"}
            ),
        },
        "containers": [container],
        "volumes": [
            *volumes,
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": f"{settings.tmp_size_mb}Mi"}},
        ],
    }
    if settings.runtime_class_name:
        pod_spec["runtimeClassName"] = settings.runtime_class_name
    if not settings.sandbox_host_users:
        pod_spec["hostUsers"] = False
    if settings.sandbox_node_selector:
        pod_spec["nodeSelector"] = settings.sandbox_node_selector
    if settings.sandbox_tolerations:
        pod_spec["tolerations"] = settings.sandbox_tolerations
    return pod_spec


def build_pool_job(runtime: str, settings: Settings) -> dict[str, Any]:
    """A warm-pool sandbox of `runtime`: a Job whose runner starts and waits on stdin for its one job, with the
    runtime's default memory (only executions with that limit take it). Its name is made by the API server."""
    labels = pool_labels(runtime)
    pod_spec = sandbox_pod_spec(
        settings,
        image=settings.runtime_image(runtime),
        memory_mb=settings.runtime_memory_mb(runtime),
        args=[JOB_ON_STDIN],
        volumes=[],
        mounts=[],
        stdin=True,
        cpu_request=settings.kubernetes_pool_cpu_request,
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": f"pool-{runtime}-",
            "labels": {**labels, POOL_STATE_LABEL: POOL_WAITING},
        },
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": settings.job_ttl_seconds,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def pool_template(runtime: str, settings: Settings) -> str:
    """A short hash of a pool pod's template: a worker claims only pods made as it would make them (same image,
    runtime class, limits...), and the operator replaces waiting pods made from an older template."""
    template = build_pool_job(runtime, settings)["spec"]["template"]
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]


def pool_job(runtime: str, settings: Settings) -> dict[str, Any]:
    """The pool Job the operator creates: build_pool_job, labelled with its template's hash."""
    job = build_pool_job(runtime, settings)
    job["metadata"]["labels"][POOL_TEMPLATE_LABEL] = pool_template(runtime, settings)
    return job


def claimable_selector(runtime: str, settings: Settings) -> str:
    """The waiting pool Jobs of `runtime` made from this deployment's template."""
    return f"{waiting_pool_selector(runtime)},{POOL_TEMPLATE_LABEL}={pool_template(runtime, settings)}"
