"""Faults on a chart install with its default persistence: each control-plane pod deleted with 50 executions in
flight (40 through the API, 10 as ExecutionRequests), then a flood of 1 MiB inputs from one key.

After each fault every accepted execution must reach a terminal state and stay readable, none may run twice, one
that was running ends with its real result or `error` with a reason, and the queued ones run after recovery.
"Ran twice" is counted from the cluster itself: a watch on the sandbox namespace records every Job created, and an
execution whose id labels more than one Job ran twice. The counts are printed and written to
test-artifacts/faults-chart.txt.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest
import yaml
from kubernetes import client, watch

from executioner.kube import EXECUTION_LABEL, kubernetes_api_client
from helpers.kube import port_forward, stop_port_forward

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "executioner"
LOCAL_VALUES = REPO / "hack" / "chart" / "values-local.yaml"
RELEASE = "faults"
KEY_A, KEY_B = "fault-a-" + uuid.uuid4().hex, "fault-b-" + uuid.uuid4().hex
MiB = 1024 * 1024
IN_FLIGHT_API, IN_FLIGHT_KUBECTL = 40, 10
FINISH_SECONDS = 300

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(2400)]


def program(marker: str, seconds: float) -> str:
    return f"import time\ntime.sleep({seconds})\nprint({marker!r})"


class JobLedger:
    """Every sandbox Job the cluster creates, by execution id (a watch, so deleted Jobs are counted too)."""

    def __init__(self, kubeconfig: str, namespace: str):
        self.core = client.BatchV1Api(kubernetes_api_client(kubeconfig))
        self.namespace = namespace
        self.jobs: dict[str, set[str]] = defaultdict(set)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        while not self.stopped.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(self.core.list_namespaced_job, self.namespace, timeout_seconds=30):
                    job = event["object"]
                    execution_id = (job.metadata.labels or {}).get(EXECUTION_LABEL)
                    if execution_id:
                        self.jobs[execution_id].add(job.metadata.uid)
                    if self.stopped.is_set():
                        break
            except Exception:  # noqa: BLE001 - a broken watch is restarted; a relist re-adds the same uids
                time.sleep(1)
            finally:
                stream.stop()

    def runs(self, execution_id: str) -> int:
        return len(self.jobs.get(execution_id, ()))

    def stop(self) -> None:
        self.stopped.set()


class Deployment:
    """The installed release, reached through a kubectl port-forward that is restarted when its pod goes."""

    def __init__(self, helm: str, kubeconfig: str, harness, namespace: str):
        self.helm, self.kubeconfig, self.harness, self.namespace = helm, kubeconfig, harness, namespace
        self.sandbox = f"{namespace}-sbx"[:63]
        self.users = f"{namespace}-users"[:63]
        self.forward: subprocess.Popen | None = None
        self.port = 0

    def kubectl(self, *args: str, **kw):
        return self.harness.kubectl(*args, kubeconfig=self.kubeconfig, **kw)

    def helm_run(self, *args: str) -> None:
        done = subprocess.run(
            [self.helm, *args, "--kubeconfig", self.kubeconfig, "-n", self.namespace],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, f"helm {args[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    # The API, through a port-forward ----------------------------------------------------------------------------
    def _start_forward(self) -> None:
        stop_port_forward(self.forward)
        self.forward, self.port = port_forward(self.kubeconfig, self.namespace, f"{RELEASE}-executioner-api", 8000)

    def request(self, method: str, path: str, key: str = KEY_A, deadline_seconds: float = 120, **kw) -> httpx.Response:
        """One API call, retried across the API's absence (a transport error, a 502/503 while it restarts)."""
        deadline = time.monotonic() + deadline_seconds
        while True:
            if self.forward is None or self.forward.poll() is not None:
                self._start_forward()
                time.sleep(0.5)
            try:
                response = httpx.request(
                    method,
                    f"http://127.0.0.1:{self.port}{path}",
                    timeout=30,
                    headers={"Authorization": f"Bearer {key}"},
                    **kw,
                )
                if response.status_code not in (502, 503, 504) or time.monotonic() > deadline:
                    return response
            except httpx.TransportError:
                stop_port_forward(self.forward)  # its pod may be gone: forward to the Service's next pod
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    # ExecutionRequests --------------------------------------------------------------------------------------------
    def apply_request(self, name: str, code: str) -> None:
        manifest = {
            "apiVersion": "executioner.dev/v1alpha1",
            "kind": "ExecutionRequest",
            "metadata": {"name": name, "namespace": self.users},
            "spec": {"code": code, "limits": {"timeoutSeconds": 30}},
        }
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))

    def requests_status(self) -> dict[str, dict]:
        listed = self.harness.kubectl_json("get", "executionrequests", kubeconfig=self.kubeconfig, namespace=self.users)
        return {item["metadata"]["name"]: item.get("status", {}) for item in listed["items"]}

    # Faults ------------------------------------------------------------------------------------------------------
    def delete_pod(self, component: str) -> None:
        selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
        self.kubectl("delete", "pod", "-l", selector, "--wait=false", namespace=self.namespace)

    def wait_ready(self, component: str) -> None:
        selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            pods = self.harness.kubectl_json(
                "get", "pods", "-l", selector, kubeconfig=self.kubeconfig, namespace=self.namespace
            )["items"]
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            if live and all(all(s.get("ready") for s in p["status"].get("containerStatuses", [])) for p in live):
                return
            time.sleep(1)
        raise AssertionError(f"{component} is not Ready again after 240 s")


@pytest.fixture(scope="module")
def deployment(helm, kubeconfig, cluster_harness, chart_images):
    namespace = cluster_harness.make_namespace(kubeconfig, prefix="t-faults")
    dep = Deployment(helm, kubeconfig, cluster_harness, namespace)
    keys = base64.b64encode(f"{KEY_A},{KEY_B}".encode()).decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "fault-keys", "namespace": namespace},
        "data": {"api-keys": keys},
    }
    dep.kubectl("apply", "-f", "-", input=json.dumps(secret))
    dep.kubectl("create", "namespace", dep.users)
    installed = False
    try:
        dep.helm_run(
            "install",
            RELEASE,
            str(CHART),
            "-f",
            str(LOCAL_VALUES),
            "--set",
            f"sandbox.namespace={dep.sandbox}",
            "--set",
            "auth.existingSecret=fault-keys",
            "--take-ownership",  # of the cluster's one ExecutionRequest CRD
            "--wait",
            "--timeout",
            "6m",
        )
        installed = True
        yield dep
    finally:
        stop_port_forward(dep.forward)
        dep.kubectl("delete", "executionrequests", "--all", "-n", dep.users, "--wait=false", check=False)
        if installed:
            subprocess.run(
                [helm, "uninstall", RELEASE, "--kubeconfig", kubeconfig, "-n", namespace, "--wait"],
                capture_output=True,
                timeout=600,
            )
        for name in (dep.users, dep.sandbox, namespace):
            cluster_harness.delete_namespace(kubeconfig, name)


@pytest.fixture(scope="module")
def ledger(deployment, kubeconfig):
    ledger = JobLedger(kubeconfig, deployment.sandbox)
    yield ledger
    ledger.stop()


REPORT: list[str] = []


def report(line: str) -> None:
    print(line)
    REPORT.append(line)
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "faults-chart.txt").write_text("\n".join(REPORT) + "\n")


@pytest.mark.parametrize("component", ["worker", "redis", "api", "operator"])
def test_deleting_a_pod_with_fifty_in_flight_loses_and_repeats_nothing(deployment, ledger, component):
    tag = uuid.uuid4().hex[:6]
    markers: dict[str, str] = {}  # execution id (API) or resource name (kubectl) -> expected output
    for i in range(IN_FLIGHT_API):
        marker = f"{component}-{tag}-{i}"
        response = deployment.request(
            "POST", "/v1/executions", json={"code": program(marker, i % 4 * 0.5), "limits": {"timeout_seconds": 30}}
        )
        assert response.status_code == 202, response.text
        markers[response.json()["id"]] = marker
    requests = {}
    for i in range(IN_FLIGHT_KUBECTL):
        name, marker = f"{component}-{tag}-{i}", f"exr-{component}-{tag}-{i}"
        deployment.apply_request(name, program(marker, 1))
        requests[name] = marker
    time.sleep(2)  # some are running now, most are queued

    deployment.delete_pod(component)
    deployment.wait_ready(component)

    deadline = time.monotonic() + FINISH_SECONDS
    documents: dict[str, dict] = {}
    statuses: dict[str, dict] = {}
    while time.monotonic() < deadline and (len(documents) < len(markers) or len(statuses) < len(requests)):
        for execution_id in markers.keys() - documents.keys():
            response = deployment.request("GET", f"/v1/executions/{execution_id}")
            if response.status_code == 200 and response.json()["status"] not in ("queued", "running"):
                documents[execution_id] = response.json()
            elif response.status_code == 404:
                documents[execution_id] = {"status": "lost"}
        for name, status in deployment.requests_status().items():
            if name in requests and status.get("phase") not in (None, "Pending", "Running"):
                statuses[name] = status
        time.sleep(2)

    runs = {execution_id: ledger.runs(execution_id) for execution_id in markers}
    runs.update({name: ledger.runs(status.get("executionId", "")) for name, status in statuses.items()})
    outcomes = Counter(doc["status"] for doc in documents.values()) + Counter(
        status["phase"] for status in statuses.values()
    )
    counts = {
        "lost": sum(doc["status"] == "lost" for doc in documents.values()),
        "stuck": len(markers) - len(documents) + len(requests) - len(statuses),
        "duplicated": sum(n > 1 for n in runs.values()),
        "error_with_reason": sum(doc["status"] == "error" and bool(doc.get("error")) for doc in documents.values())
        + sum(status["phase"] == "Error" and bool(status.get("error")) for status in statuses.values()),
    }
    reasons = Counter(doc.get("error") for doc in documents.values() if doc["status"] == "error") + Counter(
        status.get("error") for status in statuses.values() if status["phase"] == "Error"
    )
    report(f"delete {component} pod, 50 in flight: {counts} outcomes {dict(outcomes)} errors {dict(reasons)}")
    assert counts["lost"] == counts["stuck"] == counts["duplicated"] == 0, counts
    for execution_id, doc in documents.items():
        if doc["status"] == "succeeded":
            assert doc["stdout"] == markers[execution_id] + "\n", doc
        else:
            assert doc["status"] == "error" and doc["error"], doc
    for name, status in statuses.items():
        if status["phase"] == "Succeeded":
            assert status["stdout"] == requests[name] + "\n", status
        else:
            assert status["phase"] == "Error" and status["error"], status
    # Everything accepted after the fault runs normally again.
    hello = deployment.request("POST", "/v1/executions", params={"wait": 30}, json={"code": "print('after')"})
    assert hello.status_code == 200 and hello.json()["stdout"] == "after\n", hello.text


def test_a_flood_from_one_key_is_refused_and_leaves_redis_and_other_keys_intact(deployment):
    kept = deployment.request("POST", "/v1/executions", key=KEY_B, params={"wait": 30}, json={"code": "print('kept')"})
    assert kept.json()["status"] == "succeeded"
    redis_pod = deployment.harness.kubectl_json(
        "get",
        "pods",
        "-l",
        f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=redis",
        kubeconfig=deployment.kubeconfig,
        namespace=deployment.namespace,
    )["items"][0]
    restarts_before = redis_pod["status"]["containerStatuses"][0]["restartCount"]
    flood = {"code": "print(1)", "stdin": "x" * MiB}
    statuses = []
    for _ in range(400):  # 400 MiB: far past Redis's memory if nothing refused
        statuses.append(deployment.request("POST", "/v1/executions", json=flood, deadline_seconds=5).status_code)
        if statuses[-1] in (429, 503):
            break
    accepted = statuses.count(202)
    report(f"flood of 1 MiB inputs from one key: {accepted} accepted, then {statuses[-1]}")
    assert statuses[-1] in (429, 503), Counter(statuses)
    redis_pod = deployment.harness.kubectl_json(
        "get", "pod", redis_pod["metadata"]["name"], kubeconfig=deployment.kubeconfig, namespace=deployment.namespace
    )
    assert redis_pod["status"]["containerStatuses"][0]["restartCount"] == restarts_before  # never OOM-killed
    again = deployment.request("GET", f"/v1/executions/{kept.json()['id']}", key=KEY_B)
    assert again.json()["stdout"] == "kept\n"
    # Another key is still admitted; its execution waits its turn behind the flood's (the queue is first in,
    # first out) and then runs.
    other = deployment.request("POST", "/v1/executions", key=KEY_B, json={"code": "print(2)"})
    assert other.status_code == 202, other.text
    deadline = time.monotonic() + FINISH_SECONDS
    doc = other.json()
    while doc["status"] in ("queued", "running") and time.monotonic() < deadline:
        doc = deployment.request("GET", f"/v1/executions/{doc['id']}", key=KEY_B, params={"wait": 30}).json()
    assert doc["status"] == "succeeded" and doc["stdout"] == "2\n", doc
