"""Proof that the test cluster provisions real PersistentVolumes: a claim that names no StorageClass gets the default
one (`local-path`), binds when a pod uses it, keeps what one pod wrote for the next pod, and is cleaned up when the
claim goes (reclaim policy Delete)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from cluster import harness as h

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


def _claim(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}},
    }


def _pod_with_claim(name: str, image: str, claim: str, script: str) -> dict:
    spec = h.restricted_pod_spec(image, ["python3", "-c", script])
    spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
    spec["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return h.pod(name, spec)


def _succeeded(kubeconfig, namespace, name, timeout=120) -> str:
    try:
        h.wait(kubeconfig, namespace, f"pod/{name}", "jsonpath={.status.phase}=Succeeded", timeout=timeout)
    except Exception:
        print(h.kubectl("describe", "pod", name, kubeconfig=kubeconfig, namespace=namespace, check=False).stdout)
        print(h.kubectl("get", "events", kubeconfig=kubeconfig, namespace=namespace, check=False).stdout)
        raise
    return h.pod_logs(kubeconfig, namespace, name)


def test_default_storage_class_is_local_path(kubeconfig):
    classes = h.kubectl_json("get", "storageclasses", kubeconfig=kubeconfig)["items"]
    default = [
        c
        for c in classes
        if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]
    assert [c["metadata"]["name"] for c in default] == ["local-path"], classes
    [sc] = default
    assert sc["provisioner"] == "rancher.io/local-path"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer" and sc["reclaimPolicy"] == "Delete"


def test_claim_without_class_binds_and_keeps_data_across_pods(kubeconfig, namespace, probe_image):
    kc, ns = kubeconfig, namespace
    h.apply(_claim("data"), kc, ns)
    claim = h.kubectl_json("get", "pvc", "data", kubeconfig=kc, namespace=ns)
    # the DefaultStorageClass admission plugin filled in the class; no pod uses it yet, so it waits
    assert claim["spec"]["storageClassName"] == "local-path"
    time.sleep(2)
    assert h.kubectl_json("get", "pvc", "data", kubeconfig=kc, namespace=ns)["status"]["phase"] == "Pending"

    token = uuid.uuid4().hex
    write = f"open('/data/proof.txt', 'w').write({token!r}); print('wrote')"
    t0 = time.monotonic()
    h.apply(_pod_with_claim("writer", probe_image, "data", write), kc, ns)
    h.wait(kc, ns, "pvc/data", "jsonpath={.status.phase}=Bound", timeout=120)
    bound_after = time.monotonic() - t0
    assert _succeeded(kc, ns, "writer").strip() == "wrote"
    print(f"claim bound {bound_after:.1f} s after its first pod was created")

    pv_name = h.kubectl_json("get", "pvc", "data", kubeconfig=kc, namespace=ns)["spec"]["volumeName"]
    pv = h.kubectl_json("get", "pv", pv_name, kubeconfig=kc)
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["spec"]["storageClassName"] == "local-path"
    host_dir = Path(pv["spec"]["hostPath"]["path"])
    if h.is_local_cluster(kc):
        assert host_dir.parent == h.STATE / "local-path", host_dir
        assert (host_dir / "proof.txt").read_text() == token

    # a new pod (the first one deleted) reads back what the first one wrote
    h.kubectl("delete", "pod", "writer", "--wait=true", kubeconfig=kc, namespace=ns, timeout=120)
    read = "print(open('/data/proof.txt').read())"
    h.apply(_pod_with_claim("reader", probe_image, "data", read), kc, ns)
    assert _succeeded(kc, ns, "reader").strip() == token

    # reclaim policy Delete: the claim goes, the volume and its directory go with it
    h.kubectl("delete", "pod", "reader", "--wait=true", kubeconfig=kc, namespace=ns, timeout=120)
    h.kubectl("delete", "pvc", "data", "--wait=true", kubeconfig=kc, namespace=ns, timeout=120)
    deadline = time.monotonic() + 120
    while h.kubectl("get", "pv", pv_name, kubeconfig=kc, check=False).returncode == 0:
        assert time.monotonic() < deadline, f"PersistentVolume {pv_name} outlived its claim"
        time.sleep(1)
    if h.is_local_cluster(kc):
        assert not host_dir.exists(), f"{host_dir} is still on disk"
