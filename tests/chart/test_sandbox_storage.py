"""What the kubelet does to a pod that writes past its ephemeral-storage limit, on the real cluster, and what the
worker makes of it. A sandbox has no disk-backed writable path of its own (read-only root, /tmp in memory), so its
limit bounds its container log and writable layer; the eviction is shown here with a pod that does write to disk."""

from __future__ import annotations

import pytest
from kubernetes import client

from executioner.models import Status
from executioner.worker.backends.kubernetes import CONTAINER, outcome_from_pod

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


def test_the_kubelet_evicts_a_pod_past_its_storage_limit_and_the_execution_ends_error(
    kubeconfig, namespace, cluster_harness, probe_image
):
    h = cluster_harness
    write = "import time; open('/scratch/fill', 'wb').write(b'x' * (64 << 20)); time.sleep(120)"
    spec = h.restricted_pod_spec(probe_image, ["python3", "-c", write], memory="128Mi")
    [container] = spec["containers"]
    container["name"] = CONTAINER
    container["resources"]["requests"]["ephemeral-storage"] = "8Mi"
    container["resources"]["limits"]["ephemeral-storage"] = "8Mi"
    container["volumeMounts"] = [{"name": "scratch", "mountPath": "/scratch"}]
    spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]  # on the node's disk, unlike a sandbox's /tmp
    h.apply(h.pod("filler", spec), kubeconfig, namespace)
    # the eviction manager looks every 10 s, at stats that are up to a housekeeping interval old
    h.wait(kubeconfig, namespace, "pod/filler", "jsonpath={.status.reason}=Evicted", timeout=180)
    pod = client.CoreV1Api(h.api_client(kubeconfig)).read_namespaced_pod("filler", namespace)
    print(f"kubelet: phase {pod.status.phase}, reason {pod.status.reason}, message {pod.status.message!r}")
    assert pod.status.phase == "Failed" and "ephemeral local storage" in pod.status.message
    outcome = outcome_from_pod(pod, logs=None, limits_memory_mb=128)
    assert outcome is not None and outcome.status is Status.error
    assert outcome.error.startswith("the node evicted the sandbox: ") and "8Mi" in outcome.error, outcome.error
