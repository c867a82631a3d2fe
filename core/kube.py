"""Kubernetes helpers shared by the worker's backend and the operator: client creation, names and labels."""

from __future__ import annotations

import os

from kubernetes import client, config

# Every object the system creates for an execution carries these labels; the sandbox NetworkPolicy selects them.
SANDBOX_LABELS = {"app.kubernetes.io/name": "executioner-sandbox", "app.kubernetes.io/managed-by": "executioner"}
SANDBOX_SELECTOR = ",".join(f"{key}={value}" for key, value in SANDBOX_LABELS.items())
EXECUTION_LABEL = "executioner.dev/execution-id"
# Warm-pool sandboxes (one Job each, made by the operator) carry their runtime in POOL_LABEL; the Job's POOL_STATE_LABEL
# says whether it still waits for an execution or a worker has claimed it (and then also names the execution).
POOL_LABEL = "executioner.dev/pool"
POOL_STATE_LABEL = "executioner.dev/pool-state"
# A hash of the pool pod's template, on the Job: workers claim only pods made as they would make them.
POOL_TEMPLATE_LABEL = "executioner.dev/pool-template"
POOL_WAITING = "waiting"
POOL_CLAIMED = "claimed"


def job_name(execution_id: str) -> str:
    return f"exec-{execution_id}"


def sandbox_labels(execution_id: str) -> dict[str, str]:
    return {**SANDBOX_LABELS, EXECUTION_LABEL: execution_id}


def pool_labels(runtime: str) -> dict[str, str]:
    return {**SANDBOX_LABELS, POOL_LABEL: runtime}


def waiting_pool_selector(runtime: str) -> str:
    return f"{SANDBOX_SELECTOR},{POOL_LABEL}={runtime},{POOL_STATE_LABEL}={POOL_WAITING}"


def execution_selector(execution_id: str) -> str:
    return f"{EXECUTION_LABEL}={execution_id}"


def kubernetes_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster credentials first, a kubeconfig (KUBECONFIG by default) as the fallback."""
    if kubeconfig is None:
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(configuration)
        except config.ConfigException:
            pass
    # Read KUBECONFIG now: the client library's own default is fixed when it is first imported.
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    api_client: client.ApiClient = config.new_client_from_config(config_file=kubeconfig)
    return api_client
