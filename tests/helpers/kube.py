"""Kubernetes pieces for tests: the sandbox namespace from manifests/, and least-privilege credentials.

Components under test get a kubeconfig holding a ServiceAccount token bound to
exactly the Role the chart gives them (manifests/rbac.yaml), never cluster-admin.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from pathlib import Path

import yaml

from executioner.kube import EXECUTION_LABEL, POOL_STATE_LABEL, POOL_WAITING
from helpers.stack import REPO

MANIFESTS = REPO / "manifests"
CHART_SANDBOX_NAMESPACE = "executioner-sandbox"
CHART_HOME_NAMESPACE = "executioner"


def kubectl_bin() -> str:
    from cluster import harness  # tests/cluster/harness.py

    return harness.kubectl_bin()


def kubectl(kubeconfig: str, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [kubectl_bin(), "--kubeconfig", kubeconfig, *args],
        input=input,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def renamespaced(path: Path, sandbox_namespace: str, home_namespace: str) -> list[dict]:
    """The chart's rendered objects, moved into the given namespaces (so tests never collide)."""
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    moves = {CHART_SANDBOX_NAMESPACE: sandbox_namespace, CHART_HOME_NAMESPACE: home_namespace}
    for doc in documents:
        metadata = doc["metadata"]
        if doc["kind"] == "Namespace":
            metadata["name"] = moves.get(metadata["name"], metadata["name"])
        if "namespace" in metadata:
            metadata["namespace"] = moves.get(metadata["namespace"], metadata["namespace"])
        for subject in doc.get("subjects", []):
            if "namespace" in subject:
                subject["namespace"] = moves.get(subject["namespace"], subject["namespace"])
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            metadata["name"] = f"{metadata['name']}-{home_namespace}"
            if doc["kind"] == "ClusterRoleBinding":
                doc["roleRef"]["name"] = f"{doc['roleRef']['name']}-{home_namespace}"
    return documents


def apply(kubeconfig: str, documents: list[dict]) -> None:
    kubectl(kubeconfig, "apply", "-f", "-", input=yaml.safe_dump_all(documents))


def create_sandbox_namespace(kubeconfig: str, name: str) -> None:
    """The sandbox namespace exactly as manifests/ defines it: restricted PSA, deny-all policy, quota, limits."""
    apply(kubeconfig, renamespaced(MANIFESTS / "sandbox-namespace.yaml", name, CHART_HOME_NAMESPACE))


def component_kubeconfig(
    kubeconfig: str, component: str, sandbox_namespace: str, home_namespace: str, path: Path
) -> str:
    """A kubeconfig for `component` (worker, operator) with only the RBAC that manifests/rbac.yaml grants it."""
    kubectl(kubeconfig, "create", "namespace", home_namespace, check=False)
    documents = [
        doc
        for doc in renamespaced(MANIFESTS / "rbac.yaml", sandbox_namespace, home_namespace)
        if doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
    ]
    apply(kubeconfig, documents)
    account = next(doc["metadata"]["name"] for doc in documents if doc["kind"] == "ServiceAccount")
    token = kubectl(kubeconfig, "create", "token", account, "-n", home_namespace, "--duration", "4h").stdout.strip()
    admin = yaml.safe_load(Path(kubeconfig).read_text())
    cluster = admin["clusters"][0]["cluster"]
    if "certificate-authority" in cluster:
        cluster = {
            "server": cluster["server"],
            "certificate-authority-data": base64.b64encode(
                Path(cluster["certificate-authority"]).read_bytes()
            ).decode(),
        }
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": cluster}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {"name": "test", "context": {"cluster": "test", "user": account, "namespace": home_namespace}}
                ],
                "current-context": "test",
            }
        )
    )
    path.chmod(0o600)
    return str(path)


def ready_pool_jobs(kubeconfig: str, namespace: str) -> list[str]:
    """The warm pool's Jobs that wait for an execution with their pod Ready."""
    jobs = json.loads(
        kubectl(
            kubeconfig, "get", "jobs", "-n", namespace, "-l", f"{POOL_STATE_LABEL}={POOL_WAITING}", "-o", "json"
        ).stdout
    )["items"]
    return [job["metadata"]["name"] for job in jobs if job.get("status", {}).get("ready")]


def wait_for_pool(kubeconfig: str, namespace: str, size: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while len(ready_pool_jobs(kubeconfig, namespace)) < size:
        assert time.monotonic() < deadline, f"the warm pool in {namespace} did not fill to {size} in {seconds:g} s"
        time.sleep(0.5)


def execution_objects(
    kubeconfig: str, namespace: str, execution_id: str, kinds: str = "jobs,pods,secrets"
) -> list[str]:
    """The sandbox objects of an execution: labelled with it, or (a warm pool's pod) owned by a Job labelled with it."""
    selector = f"{EXECUTION_LABEL}={execution_id}"
    found = kubectl(kubeconfig, "get", kinds, "-n", namespace, "-l", selector, "-o", "name").stdout.split()
    for job in [name.removeprefix("job.batch/") for name in found if name.startswith("job.batch/")]:
        found += kubectl(
            kubeconfig, "get", "pods", "-n", namespace, "-l", f"job-name={job}", "-o", "name"
        ).stdout.split()
    return found


def execution_pod_phase(kubeconfig: str, namespace: str, execution_id: str) -> str:
    """The phase of the execution's sandbox pod (its own Job's or its warm pool pod's); "" while it has none."""
    pods = [
        name for name in execution_objects(kubeconfig, namespace, execution_id, "jobs,pods") if name.startswith("pod/")
    ]
    if not pods:
        return ""
    return kubectl(kubeconfig, "get", pods[0], "-n", namespace, "-o", "jsonpath={.status.phase}", check=False).stdout


def delete_namespaces(kubeconfig: str, *names: str) -> None:
    for name in names:
        kubectl(kubeconfig, "delete", "namespace", name, "--wait=false", check=False)


def port_forward(kubeconfig: str, namespace: str, service: str, remote_port: int) -> tuple[subprocess.Popen, int]:
    """`kubectl port-forward` to a Service on a free local port; the caller stops the process."""
    from helpers.stack import free_port

    port = free_port()
    process = subprocess.Popen(
        [
            kubectl_bin(),
            "--kubeconfig",
            kubeconfig,
            "-n",
            namespace,
            "port-forward",
            f"service/{service}",
            f"{port}:{remote_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port


def stop_port_forward(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        process.wait(timeout=10)


def wait_until_healthy(client, seconds: float = 30) -> None:
    """Until the API behind `client` (an httpx.Client) answers /healthz with ok; a port-forward needs a moment."""
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            assert client.get("/healthz").json()["status"] == "ok"
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
