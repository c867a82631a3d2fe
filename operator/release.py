"""After `helm uninstall` (a post-delete hook): let go of every ExecutionRequest, so none waits on an operator that
is gone. The operator's finalizer comes off each one, and one still unfinished ends `Error` with the reason (its
workers and store went with the release). In a sandbox namespace that outlives the release, the warm pool's Jobs
go too: they have no deadline, and nobody would claim or delete them any more."""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client

from executioner.kube import POOL_LABEL
from executioner.operator.resource import FINALIZER, GROUP, PLURAL, VERSION
from executioner.operator.status import FINAL_PHASES

log = logging.getLogger(__name__)
UNINSTALLED = "the executioner release was uninstalled before this request finished"


def release_all(api_client: client.ApiClient) -> list[str]:
    """Remove the finalizer from every ExecutionRequest in the cluster; returns "<namespace>/<name>" of each."""
    objects = client.CustomObjectsApi(api_client)
    released = []
    for item in objects.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]:
        meta: dict[str, Any] = item["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        if item.get("status", {}).get("phase") not in FINAL_PHASES:
            status = {"phase": "Error", "error": UNINSTALLED}
            objects.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name, {"status": status})
        finalizers = meta.get("finalizers") or []
        if FINALIZER in finalizers:
            # the resourceVersion makes the patch conditional: a concurrent change fails it rather than being lost
            kept = [f for f in finalizers if f != FINALIZER]
            patch = {"metadata": {"finalizers": kept, "resourceVersion": meta["resourceVersion"]}}
            objects.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)
        released.append(f"{namespace}/{name}")
        log.info("released ExecutionRequest %s/%s", namespace, name)
    return released


def delete_pool_jobs(api_client: client.ApiClient, namespace: str) -> list[str]:
    """Delete every warm-pool Job (label POOL_LABEL, waiting or claimed) in `namespace`, with its pod; their names."""
    batch = client.BatchV1Api(api_client)
    names = [job.metadata.name for job in batch.list_namespaced_job(namespace, label_selector=POOL_LABEL).items]
    for name in names:
        try:
            batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
        except client.ApiException as exc:
            if exc.status != 404:  # gone already: what we wanted
                raise
        log.info("deleted pool Job %s/%s", namespace, name)
    return names
