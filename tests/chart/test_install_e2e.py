"""End to end on a real cluster: helm install into a fresh namespace, every pod Ready, a hello world through the API
Service, an ExecutionRequest through kubectl, helm test, an upgrade that keeps the generated secrets, and
helm uninstall leaving nothing behind but the CRD.

The tests in this module share one release and run in file order (the last one uninstalls it). Images come from the
`chart_images` fixture (tests/chart/conftest.py).
"""
from __future__ import annotations

import base64
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "executioner"
LOCAL_VALUES = REPO / "hack" / "chart" / "values-local.yaml"

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]


class Release:
    def __init__(self, helm, kubeconfig, harness, namespace):
        self.helm, self.kubeconfig, self.harness, self.namespace = helm, kubeconfig, harness, namespace
        self.name = "e2e"
        self.sandbox = f"{namespace}-sbx"[:63]
        self.fullname = f"{self.name}-executioner"
        self.installed = False

    def helm_run(self, *args, timeout=600, check=True):
        cmd = [self.helm, *args, "--kubeconfig", self.kubeconfig, "-n", self.namespace]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, args[:2]))} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        return p

    def install_args(self):
        return ["-f", str(LOCAL_VALUES), "--set", f"sandbox.namespace={self.sandbox}",
                "--wait", "--timeout", "5m"]

    def kubectl(self, *args, **kw):
        return self.harness.kubectl(*args, kubeconfig=self.kubeconfig, **kw)

    def secret(self, name, key):
        data = self.harness.kubectl_json("get", "secret", name, kubeconfig=self.kubeconfig,
                                         namespace=self.namespace)["data"]
        return base64.b64decode(data[key]).decode()


@pytest.fixture(scope="module")
def release(helm, kubeconfig, cluster_harness, chart_images):
    namespace = cluster_harness.make_namespace(kubeconfig, prefix="t-chart-e2e")  # Pod Security "restricted"
    rel = Release(helm, kubeconfig, cluster_harness, namespace)
    try:
        rel.helm_run("install", rel.name, str(CHART), *rel.install_args())
        rel.installed = True
        yield rel
    finally:
        if rel.installed:
            rel.helm_run("uninstall", rel.name, "--wait", check=False)
        cluster_harness.delete_namespace(kubeconfig, rel.sandbox)
        cluster_harness.delete_namespace(kubeconfig, namespace)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_pod_ready(release):
    release.kubectl("wait", "--for=condition=Ready", "pod", "-l", "app.kubernetes.io/instance=e2e",
                    "--timeout=180s", namespace=release.namespace, timeout=240)
    pods = release.harness.kubectl_json("get", "pods", kubeconfig=release.kubeconfig, namespace=release.namespace)
    components = sorted(p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods["items"])
    assert components == sorted(["api", "worker", "redis", "operator"])
    for pod in pods["items"]:
        assert all(s["ready"] for s in pod["status"]["containerStatuses"]), pod["metadata"]["name"]
    labels = release.harness.kubectl_json("get", "namespace", release.sandbox, kubeconfig=release.kubeconfig)[
        "metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_hello_world_through_the_api_service(release):
    port = free_port()
    forward = subprocess.Popen(
        [release.harness.kubectl_bin(), "--kubeconfig", release.kubeconfig, "-n", release.namespace,
         "port-forward", f"service/{release.fullname}-api", f"{port}:8000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        key = release.secret(f"{release.fullname}-api-keys", "api-keys")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    assert client.get("/healthz").json()["status"] == "ok"
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            assert client.post("/v1/executions", json={"code": "print(1)"}).status_code == 401
            assert "<html" in client.get("/").text.lower()  # the web UI ships in the app image
            headers = {"Authorization": f"Bearer {key}"}
            doc = client.post("/v1/executions", params={"wait": 30}, headers=headers,
                              json={"code": "print('hello world')"}).json()
            while doc["status"] in ("queued", "running"):
                doc = client.get(f"/v1/executions/{doc['id']}", params={"wait": 10}, headers=headers).json()
        assert doc["status"] == "succeeded", doc
        assert doc["stdout"] == "hello world\n" and doc["exit_code"] == 0 and doc["backend"] == "kubernetes"
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_execution_request_through_kubectl(release):
    name = f"hello-{uuid.uuid4().hex[:6]}"
    release.harness.apply({"apiVersion": "executioner.dev/v1alpha1", "kind": "ExecutionRequest",
                           "metadata": {"name": name}, "spec": {"code": "print('hello world')"}},
                          kubeconfig=release.kubeconfig, namespace=release.namespace)
    release.harness.wait(release.kubeconfig, release.namespace, f"executionrequest/{name}",
                         "jsonpath={.status.phase}=Succeeded", timeout=120)
    status = release.harness.kubectl_json("get", "exr", name, kubeconfig=release.kubeconfig,
                                          namespace=release.namespace)["status"]
    assert status["stdout"] == "hello world\n" and status["exitCode"] == 0 and status["executionId"]


def test_helm_test_passes(release):
    p = release.helm_run("test", release.name, "--timeout", "5m", check=False)
    if p.returncode != 0:
        logs = release.kubectl("logs", f"{release.fullname}-test-hello", namespace=release.namespace, check=False)
        pytest.fail(f"helm test failed:\n{p.stdout}\n{p.stderr}\n{logs.stdout}{logs.stderr}")
    assert re.search(r"TEST SUITE:\s+e2e-executioner-test-hello\n.*\n.*\nPhase:\s+Succeeded", p.stdout), p.stdout


def test_upgrade_keeps_generated_secrets(release):
    before = (release.secret(f"{release.fullname}-api-keys", "api-keys"),
              release.secret(f"{release.fullname}-redis", "redis-password"))
    release.helm_run("upgrade", release.name, str(CHART), *release.install_args())
    after = (release.secret(f"{release.fullname}-api-keys", "api-keys"),
             release.secret(f"{release.fullname}-redis", "redis-password"))
    assert after == before
    release.kubectl("rollout", "status", f"deployment/{release.fullname}-api", "--timeout=120s",
                    namespace=release.namespace, timeout=180)


def test_uninstall_leaves_only_the_crd(release):
    release.helm_run("uninstall", release.name, "--wait")
    release.installed = False
    kinds = "deployments,statefulsets,services,secrets,serviceaccounts,networkpolicies,roles,rolebindings,pods"
    deadline = time.monotonic() + 150  # pods terminate within their grace period (the worker's is 90 s)
    while left := release.kubectl("get", kinds, "-l", "app.kubernetes.io/instance=e2e", "-o", "name",
                                  namespace=release.namespace).stdout.split():
        assert time.monotonic() < deadline and all(n.startswith("pod/") for n in left), left
        time.sleep(2)
    cluster_wide = release.kubectl("get", "clusterroles,clusterrolebindings", "-o", "name").stdout.split()
    assert not [n for n in cluster_wide if release.fullname in n], cluster_wide
    deadline = time.monotonic() + 180  # the sandbox namespace goes with the release (its Jobs with it)
    while release.kubectl("get", "namespace", release.sandbox, check=False).returncode == 0:
        assert time.monotonic() < deadline, f"namespace {release.sandbox} is still there"
        time.sleep(2)
    crd = release.harness.kubectl_json("get", "crd", "executionrequests.executioner.dev",
                                       kubeconfig=release.kubeconfig)
    assert crd["spec"]["names"]["shortNames"] == ["exr"]
    assert crd["spec"]["versions"][0]["name"] == "v1alpha1"
