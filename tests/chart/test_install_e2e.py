"""End to end on a real cluster: helm install into a fresh namespace, every pod Ready, a hello world through the API
Service, an ExecutionRequest through kubectl (its plot fetched from the API with ServiceAccount tokens, Kubernetes RBAC
deciding), helm test, Redis on a bound claim of the default StorageClass with the
memory bound the chart set, deleting the Redis pod losing no execution (finished or queued), an upgrade that keeps
the generated secrets, and helm uninstall leaving nothing behind but the CRD and the Redis claim (kept by default).

The tests in this module share one release and run in file order (the last one uninstalls it). Images come from the
`chart_images` fixture (tests/chart/conftest.py).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from executioner.kube import POOL_LABEL, POOL_STATE_LABEL, POOL_WAITING
from helpers import kube
from helpers.data_programs import DATA_CSV, PLOT_PROGRAM, PLOT_STDOUT, png_size

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
        # --take-ownership: the ExecutionRequest CRD is one per cluster, and other tests' releases made it theirs
        return [
            "-f", str(LOCAL_VALUES), "--set", f"sandbox.namespace={self.sandbox}", "--take-ownership",
            "--wait", "--timeout", "5m",
        ]  # fmt: skip

    def kubectl(self, *args, **kw):
        return self.harness.kubectl(*args, kubeconfig=self.kubeconfig, **kw)

    def secret(self, name, key):
        data = self.harness.kubectl_json("get", "secret", name, kubeconfig=self.kubeconfig, namespace=self.namespace)[
            "data"
        ]
        return base64.b64decode(data[key]).decode()

    @contextlib.contextmanager
    def api(self):
        """An httpx client for the API Service (kubectl port-forward), with the release's API key."""
        forward, port = kube.port_forward(self.kubeconfig, self.namespace, f"{self.fullname}-api", 8000)
        key = self.secret(f"{self.fullname}-api-keys", "api-keys")
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", timeout=60, headers={"Authorization": f"Bearer {key}"}
            ) as client:
                kube.wait_until_healthy(client)
                yield client
        finally:
            kube.stop_port_forward(forward)

    def redis_cli(self, *args) -> list[str]:
        """redis-cli in the Redis pod (the password from the pod's environment); output lines."""
        command = 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -p 6379 "$@"'
        p = self.kubectl(
            "exec",
            f"{self.fullname}-redis-0",
            "-c",
            "redis",
            "--",
            "sh",
            "-c",
            command,
            "redis-cli",
            *args,
            namespace=self.namespace,
            timeout=60,
        )
        return p.stdout.splitlines()


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


def test_every_pod_ready(release):
    release.kubectl(
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app.kubernetes.io/instance=e2e",
        "--timeout=180s",
        namespace=release.namespace,
        timeout=240,
    )
    pods = release.harness.kubectl_json("get", "pods", kubeconfig=release.kubeconfig, namespace=release.namespace)
    components = sorted(p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods["items"])
    assert components == sorted(["api", "worker", "redis", "operator"])
    for pod in pods["items"]:
        assert all(s["ready"] for s in pod["status"]["containerStatuses"]), pod["metadata"]["name"]
    labels = release.harness.kubectl_json("get", "namespace", release.sandbox, kubeconfig=release.kubeconfig)[
        "metadata"
    ]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_hello_world_through_the_api_service(release):
    forward, port = kube.port_forward(release.kubeconfig, release.namespace, f"{release.fullname}-api", 8000)
    try:
        key = release.secret(f"{release.fullname}-api-keys", "api-keys")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            kube.wait_until_healthy(client)
            assert client.post("/v1/executions", json={"code": "print(1)"}).status_code == 401
            assert "<html" in client.get("/").text.lower()  # the web UI ships in the app image
            headers = {"Authorization": f"Bearer {key}"}
            doc = client.post(
                "/v1/executions", params={"wait": 30}, headers=headers, json={"code": "print('hello world')"}
            ).json()
            while doc["status"] in ("queued", "running"):
                doc = client.get(f"/v1/executions/{doc['id']}", params={"wait": 10}, headers=headers).json()
        assert doc["status"] == "succeeded", doc
        assert doc["stdout"] == "hello world\n" and doc["exit_code"] == 0 and doc["backend"] == "kubernetes"
    finally:
        kube.stop_port_forward(forward)


def _ready_waiting_pool_jobs(release, runtime: str, count: int, timeout=180) -> list[str]:
    """Names of the pool Jobs of `runtime` once exactly `count` are waiting with their pod Ready."""
    selector = f"{POOL_LABEL}={runtime},{POOL_STATE_LABEL}={POOL_WAITING}"
    deadline = time.monotonic() + timeout
    while True:
        jobs = release.harness.kubectl_json(
            "get", "jobs", "-l", selector, kubeconfig=release.kubeconfig, namespace=release.sandbox
        )["items"]
        ready = sorted(j["metadata"]["name"] for j in jobs if (j.get("status") or {}).get("ready") == 1)
        if len(ready) == len(jobs) == count:
            return ready
        assert time.monotonic() < deadline, f"waiting pool Jobs of {runtime}: {len(jobs)}, Ready {ready}; want {count}"
        time.sleep(1)


def test_the_operator_keeps_the_default_pool_ready_and_executions_start_warm(release):
    """The chart's default pool (sandbox.pool.sizes {python: 2}): two python pool Jobs waiting with their pod Ready; a
    hello world through the API takes one (`sandbox_start: warm`), which goes, and the operator makes another; a
    memory limit other than the runtime's default starts a Job of its own (`cold`)."""
    before = _ready_waiting_pool_jobs(release, "python", 2)
    assert all(name.startswith("pool-python-") for name in before)
    with release.api() as client:
        doc = _finish(client, client.post("/v1/executions", params={"wait": 30}, json={"code": "print('warm')"}).json())
        assert (doc["status"], doc["stdout"], doc["sandbox_start"]) == ("succeeded", "warm\n", "warm"), doc
        after = _ready_waiting_pool_jobs(release, "python", 2)
        assert len(set(before) - set(after)) == 1, (before, after)  # the one it took is gone, a new one waits
        body = {"code": "print('cold')", "limits": {"memory_mb": 256}}
        doc = _finish(client, client.post("/v1/executions", params={"wait": 30}, json=body).json())
        assert (doc["status"], doc["stdout"], doc["sandbox_start"]) == ("succeeded", "cold\n", "cold"), doc
    assert not release.harness.kubectl_json(
        "get", "jobs", "-l", f"{POOL_LABEL}=python-data", kubeconfig=release.kubeconfig, namespace=release.sandbox
    )["items"], "the default pool has no python-data pods"


def test_a_plot_from_a_csv_through_the_api_service_in_python_data(release):
    """The chart's runtime images reach the worker: pandas reads the CSV sent in, the plot comes back from the API."""
    forward, port = kube.port_forward(release.kubeconfig, release.namespace, f"{release.fullname}-api", 8000)
    try:
        headers = {"Authorization": f"Bearer {release.secret(f'{release.fullname}-api-keys', 'api-keys')}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, headers=headers) as client:
            kube.wait_until_healthy(client)
            body = {
                "code": PLOT_PROGRAM,
                "runtime": "python-data",
                "files": [{"path": "data.csv", "content_base64": base64.b64encode(DATA_CSV).decode()}],
            }
            doc = client.post("/v1/executions", params={"wait": 30}, json=body).json()
            while doc["status"] in ("queued", "running"):
                doc = client.get(f"/v1/executions/{doc['id']}", params={"wait": 10}).json()
            assert (doc["status"], doc["stdout"], doc["runtime"]) == ("succeeded", PLOT_STDOUT, "python-data"), doc
            assert [a["path"] for a in doc["artifacts"]] == ["plot.png", "report.html"]
            plot = client.get(f"/v1/executions/{doc['id']}/artifacts/plot.png")
            assert plot.headers["content-type"] == "image/png"
            assert png_size(plot.content)[0] > 100
    finally:
        kube.stop_port_forward(forward)


def test_execution_request_through_kubectl(release):
    name = f"hello-{uuid.uuid4().hex[:6]}"
    release.harness.apply(
        {
            "apiVersion": "executioner.dev/v1alpha1",
            "kind": "ExecutionRequest",
            "metadata": {"name": name},
            "spec": {"code": "print('hello world')"},
        },
        kubeconfig=release.kubeconfig,
        namespace=release.namespace,
    )
    release.harness.wait(
        release.kubeconfig,
        release.namespace,
        f"executionrequest/{name}",
        "jsonpath={.status.phase}=Succeeded",
        timeout=120,
    )
    status = release.harness.kubectl_json(
        "get", "exr", name, kubeconfig=release.kubeconfig, namespace=release.namespace
    )["status"]
    assert status["stdout"] == "hello world\n" and status["exitCode"] == 0 and status["executionId"]


def _exr(name, code, **spec):
    return {
        "apiVersion": "executioner.dev/v1alpha1",
        "kind": "ExecutionRequest",
        "metadata": {"name": name},
        "spec": {"code": code, **spec},
    }


def test_an_execution_requests_plot_with_a_kubernetes_token(release):
    """kubectl users fetch an ExecutionRequest's plot from the installed API with a ServiceAccount token, Kubernetes
    RBAC deciding: allowed to get ExecutionRequests in the namespace -> the PNG; no such permission, another
    namespace's resource, no token, an API key or a token for the Kubernetes API's own audience -> refused."""
    harness, kubeconfig, home = release.harness, release.kubeconfig, release.namespace
    other = harness.make_namespace(kubeconfig, prefix="t-chart-e2e-other")
    try:
        files = [{"path": "data.csv", "contentBase64": base64.b64encode(DATA_CSV).decode()}]
        harness.apply(
            _exr("plot", PLOT_PROGRAM, runtime="python-data", files=files), kubeconfig=kubeconfig, namespace=home
        )
        harness.apply(
            _exr("theirs", "open('outputs/plot.png', 'wb').write(b'not yours')"), kubeconfig=kubeconfig, namespace=other
        )
        reader_role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "exr-reader"},
            "rules": [{"apiGroups": ["executioner.dev"], "resources": ["executionrequests"], "verbs": ["get"]}],
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "plot-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "exr-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "plot-reader", "namespace": home}],
        }
        for account in ("plot-reader", "stranger"):
            harness.apply(
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
                kubeconfig=kubeconfig,
                namespace=home,
            )
        for document in (reader_role, binding):
            harness.apply(document, kubeconfig=kubeconfig, namespace=home)

        def token(account, *audience):
            return release.kubectl("create", "token", account, *audience, namespace=home).stdout.strip()

        reader, stranger = (
            token("plot-reader", "--audience", "executioner"),
            token("stranger", "--audience", "executioner"),
        )
        kubernetes_audience = token("plot-reader")  # valid for the Kubernetes API itself, not for the API
        for namespace, name in ((home, "plot"), (other, "theirs")):
            harness.wait(kubeconfig, namespace, f"executionrequest/{name}", "jsonpath={.status.phase}=Succeeded", 180)
        status = harness.kubectl_json("get", "exr", "plot", kubeconfig=kubeconfig, namespace=home)["status"]
        assert [a["path"] for a in status["artifacts"]] == ["plot.png", "report.html"]
        plot_path = status["artifacts"][0]["apiPath"]
        assert plot_path == f"/v1/executionrequests/{home}/plot/artifacts/plot.png"
        theirs_path = f"/v1/executionrequests/{other}/theirs/artifacts/plot.png"

        forward, port = kube.port_forward(kubeconfig, home, f"{release.fullname}-api", 8000)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                kube.wait_until_healthy(client)

                def get(path, bearer=None):
                    return client.get(path, headers={"Authorization": f"Bearer {bearer}"} if bearer else {})

                plot = get(plot_path, reader)
                assert plot.status_code == 200, plot.text
                assert plot.headers["content-type"] == "image/png"
                assert plot.headers["x-content-type-options"] == "nosniff"
                assert png_size(plot.content)[0] > 100
                report = get(status["artifacts"][1]["apiPath"], reader)
                assert report.status_code == 200 and report.headers["content-disposition"].startswith("attachment")
                assert get(plot_path.replace("plot.png", "nothing.png"), reader).status_code == 404

                api_key = release.secret(f"{release.fullname}-api-keys", "api-keys")
                refused = {
                    "stranger": get(plot_path, stranger).status_code,
                    "another namespace": get(theirs_path, reader).status_code,
                    "no token": get(plot_path).status_code,
                    "API key": get(plot_path, api_key).status_code,
                    "Kubernetes API audience": get(plot_path, kubernetes_audience).status_code,
                }
                assert refused == {
                    "stranger": 403,
                    "another namespace": 403,
                    "no token": 401,
                    "API key": 401,
                    "Kubernetes API audience": 401,
                }
                # the resource in the other namespace is there and has its artifact: only RBAC refused it
                theirs = harness.kubectl_json("get", "exr", "theirs", kubeconfig=kubeconfig, namespace=other)
                assert theirs["status"]["artifacts"][0]["apiPath"] == theirs_path
        finally:
            kube.stop_port_forward(forward)
    finally:
        harness.delete_namespace(kubeconfig, other)


def test_helm_test_passes(release):
    p = release.helm_run("test", release.name, "--timeout", "5m", check=False)
    if p.returncode != 0:
        logs = release.kubectl("logs", f"{release.fullname}-test-hello", namespace=release.namespace, check=False)
        pytest.fail(f"helm test failed:\n{p.stdout}\n{p.stderr}\n{logs.stdout}{logs.stderr}")
    assert re.search(r"TEST SUITE:\s+e2e-executioner-test-hello\n.*\n.*\nPhase:\s+Succeeded", p.stdout), p.stdout


def test_liveness_probes_pass_and_mean_something(release):
    """No container was restarted by its probe, the worker's heartbeat file is fresh and the operator's Kopf
    liveness endpoint answers."""
    pods = release.harness.kubectl_json("get", "pods", kubeconfig=release.kubeconfig, namespace=release.namespace)
    for pod in pods["items"]:
        for status in pod["status"]["containerStatuses"]:
            assert status["restartCount"] == 0, (pod["metadata"]["name"], status.get("lastState"))
    age = "import os, time; print(int(time.time() - os.stat('/tmp/worker-heartbeat').st_mtime))"
    assert int(_exec_python(release, "worker", age)) < 30
    healthz = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=5).status)"
    assert _exec_python(release, "operator", healthz).strip() == "200"


def _exec_python(release, component, code, *args) -> str:
    pod = release.kubectl(
        "get",
        "pods",
        "-l",
        f"app.kubernetes.io/instance=e2e,app.kubernetes.io/component={component}",
        "-o",
        "jsonpath={.items[0].metadata.name}",
        namespace=release.namespace,
    ).stdout
    return release.kubectl(
        "exec", pod, "-c", component, "--", "python", "-c", code, *args, namespace=release.namespace, timeout=60
    ).stdout


# connects to each HOST:PORT argument from inside a component's container; prints {"HOST:PORT": "open" | error name}
CONNECT = (
    "import json, socket, sys\n"
    "result = {}\n"
    "for target in sys.argv[1:]:\n"
    "    host, port = target.rsplit(':', 1)\n"
    "    try:\n"
    "        socket.create_connection((host, int(port)), timeout=3).close()\n"
    "        result[target] = 'open'\n"
    "    except OSError as exc:\n"
    "        result[target] = type(exc).__name__\n"
    "print(json.dumps(result))\n"
)


def _connect_from(release, component, *targets) -> dict[str, str]:
    return json.loads(_exec_python(release, component, CONNECT, *targets))


def _probe_pod(release, name, probe_image, expect, targets) -> dict[str, str]:
    """A pod of the release namespace that belongs to no component, probing TCP targets (tests/cluster/testdata)."""
    command = ["python3", "/usr/local/bin/probe.py", "--expect", expect, "--within", "20", *targets]
    release.harness.apply(
        release.harness.pod(name, release.harness.restricted_pod_spec(probe_image, command), labels={"role": "probe"}),
        kubeconfig=release.kubeconfig,
        namespace=release.namespace,
    )
    try:
        release.harness.wait(
            release.kubeconfig, release.namespace, f"pod/{name}", "jsonpath={.status.phase}=Succeeded", timeout=90
        )
        return json.loads(release.harness.pod_logs(release.kubeconfig, release.namespace, name))
    finally:
        release.kubectl("delete", "pod", name, "--wait=false", namespace=release.namespace, check=False)


def test_network_policies_confine_each_component(release, probe_image):
    """The paths the components need work (every test above ran executions through them, and the operator
    reconciled an ExecutionRequest, and the API reviewed kubectl users' tokens with the Kubernetes API); the rest is
    closed: a stranger pod in the release namespace cannot reach Redis, and the worker and operator cannot reach the
    API pods."""

    def service(name):
        return release.harness.kubectl_json(
            "get", "service", name, kubeconfig=release.kubeconfig, namespace=release.namespace
        )["spec"]["clusterIP"]

    def pod_ip(component):
        pods = release.harness.kubectl_json(
            "get",
            "pods",
            "-l",
            f"app.kubernetes.io/instance=e2e,app.kubernetes.io/component={component}",
            kubeconfig=release.kubeconfig,
            namespace=release.namespace,
        )
        return pods["items"][0]["status"]["podIP"]

    redis = [f"{service(release.fullname + '-redis')}:6379", f"{pod_ip('redis')}:6379"]
    api = [f"{service(release.fullname + '-api')}:8000", f"{pod_ip('api')}:8000"]
    kube_api_service = release.harness.kubectl_json(
        "get", "service", "kubernetes", kubeconfig=release.kubeconfig, namespace="default"
    )["spec"]["clusterIP"]
    slice_ = release.harness.kubectl_json(
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=kubernetes",
        kubeconfig=release.kubeconfig,
        namespace="default",
    )["items"][0]
    kube_api = [f"{kube_api_service}:443", f"{slice_['endpoints'][0]['addresses'][0]}:{slice_['ports'][0]['port']}"]

    # a stranger: Redis is closed to it, while the API port (open to anyone) answers it, so the network works
    stranger = _probe_pod(release, "probe-redis", probe_image, "closed", redis)
    assert all(v != "open" for v in stranger.values()), f"a stranger pod reached Redis: {stranger}"
    control = _probe_pod(release, "probe-api", probe_image, "open", api)
    assert all(v == "open" for v in control.values()), f"the API port did not answer a pod: {control}"

    seen = _connect_from(release, "api", *redis, *kube_api)
    assert all(seen[t] == "open" for t in redis + kube_api), f"the API lost a path it needs: {seen}"
    for component in ("worker", "operator"):
        seen = _connect_from(release, component, *redis, *kube_api, *api)
        assert all(seen[t] == "open" for t in redis + kube_api), f"{component} lost a path it needs: {seen}"
        assert all(seen[t] != "open" for t in api), f"{component} reached the API pods: {seen}"
    print(f"policy checks: stranger {stranger}, api control {control}")


def _bytes(quantity: str) -> int:
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
    return int(quantity[:-2]) * units[quantity[-2:]] if quantity[-2:] in units else int(quantity)


def test_every_pod_stays_within_its_disk_request(release):
    """What each pod writes to the node's disk (its /tmp emptyDir, logs and writable layer, as the kubelet counts
    it for eviction) after the executions above, against the ephemeral-storage request and limit the chart set."""
    pods = release.harness.kubectl_json("get", "pods", kubeconfig=release.kubeconfig, namespace=release.namespace)
    summaries = {}
    for pod in pods["items"]:
        node = pod["spec"]["nodeName"]
        if node not in summaries:
            raw = release.kubectl("get", "--raw", f"/api/v1/nodes/{node}/proxy/stats/summary").stdout
            summaries[node] = {p["podRef"]["name"]: p for p in json.loads(raw)["pods"]}
        name = pod["metadata"]["name"]
        if pod["metadata"]["labels"].get("role") == "probe":
            continue
        used = summaries[node][name]["ephemeral-storage"]["usedBytes"]
        [container] = pod["spec"]["containers"]
        request = _bytes(container["resources"]["requests"]["ephemeral-storage"])
        limit = _bytes(container["resources"]["limits"]["ephemeral-storage"])
        print(f"{name}: {used} bytes on disk (request {request}, limit {limit})")
        assert used <= request <= limit, name


def test_redis_keeps_its_data_on_a_bound_claim_of_the_default_class(release):
    claim_name = f"data-{release.fullname}-redis-0"
    claim = release.harness.kubectl_json(
        "get", "pvc", claim_name, kubeconfig=release.kubeconfig, namespace=release.namespace
    )
    assert claim["status"]["phase"] == "Bound", claim["status"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    # the chart named no class: the cluster's default one was used (local-path on the local test cluster)
    classes = release.harness.kubectl_json("get", "storageclasses", kubeconfig=release.kubeconfig)["items"]
    default = [
        c["metadata"]["name"]
        for c in classes
        if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]
    assert claim["spec"]["storageClassName"] in default
    if release.harness.is_local_cluster(release.kubeconfig):
        assert claim["spec"]["storageClassName"] == "local-path"
    sts = release.harness.kubectl_json(
        "get", "statefulset", f"{release.fullname}-redis", kubeconfig=release.kubeconfig, namespace=release.namespace
    )
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    # what the chart set is what the running Redis says
    assert release.redis_cli("CONFIG", "GET", "maxmemory") == ["maxmemory", str(256 * 1024 * 1024 * 8 // 10)]
    assert release.redis_cli("CONFIG", "GET", "maxmemory-policy") == ["maxmemory-policy", "noeviction"]
    assert release.redis_cli("CONFIG", "GET", "appendonly") == ["appendonly", "yes"]
    assert release.redis_cli("CONFIG", "GET", "appendfsync") == ["appendfsync", "everysec"]
    assert release.redis_cli("CONFIG", "GET", "dir") == ["dir", "/data"]


def _get(client, execution_id, **params) -> dict:
    """GET an execution as a client should: a 503 (the store is briefly away, e.g. a stale pooled connection to a
    Redis pod that was replaced) is retried after its Retry-After."""
    for _ in range(30):
        response = client.get(f"/v1/executions/{execution_id}", params=params)
        if response.status_code != 503:
            assert response.status_code == 200, response.text
            return response.json()
        time.sleep(float(response.headers.get("Retry-After", "1")))
    raise AssertionError(f"execution {execution_id}: the API answered 503 for too long: {response.text}")


def _finish(client, doc, timeout=120) -> dict:
    deadline = time.monotonic() + timeout
    while doc["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"execution {doc['id']} did not finish: {doc}"
        doc = _get(client, doc["id"], wait=5)
    return doc


def _scale_worker(release, replicas: int):
    release.kubectl(
        "scale", f"deployment/{release.fullname}-worker", f"--replicas={replicas}", namespace=release.namespace
    )
    selector = "app.kubernetes.io/instance=e2e,app.kubernetes.io/component=worker"
    if replicas:
        release.kubectl(
            "rollout",
            "status",
            f"deployment/{release.fullname}-worker",
            "--timeout=180s",
            namespace=release.namespace,
            timeout=240,
        )
        return
    deadline = time.monotonic() + 150  # the worker's grace period is 90 s; an idle worker leaves at once
    while release.kubectl("get", "pods", "-l", selector, "-o", "name", namespace=release.namespace).stdout.strip():
        assert time.monotonic() < deadline, "the worker pod did not go away"
        time.sleep(1)


def test_deleting_the_redis_pod_loses_no_execution(release):
    """Finished executions come back unchanged and queued ones still run after the Redis pod is deleted."""
    programs = [
        ({"code": "print('hello world')"}, "succeeded"),
        ({"code": "import sys; print(sys.stdin.read()[::-1])", "stdin": "olleh"}, "succeeded"),
        ({"code": "import sys; sys.stdout.write('x' * 50000); sys.stdin.read()", "stdin": "y" * 200_000}, "succeeded"),
        ({"code": "import sys; print('to stderr', file=sys.stderr); sys.exit(3)"}, "failed"),
        ({"code": "raise ValueError('boom')"}, "failed"),
    ]
    with release.api() as client:
        finished = []
        for body, expected in programs:
            response = client.post("/v1/executions", params={"wait": 30}, json=body)
            assert response.status_code in (200, 201, 202), response.text
            doc = _finish(client, response.json())
            assert doc["status"] == expected, doc
            finished.append(doc)
        assert finished[1]["stdout"] == "hello\n" and len(finished[2]["stdout"]) == 50000
        assert finished[3]["exit_code"] == 3 and "to stderr" in finished[3]["stderr"]
        sizes = {
            d["id"]: int(release.redis_cli("MEMORY", "USAGE", f"executioner:execution:{d['id']}")[0]) for d in finished
        }
        print(f"record sizes in Redis (bytes): {sorted(sizes.values())}")

        # with no worker, new executions stay in the queue (a Redis list) and in the store as "queued"
        _scale_worker(release, 0)
        queued = []
        for i in range(3):
            response = client.post("/v1/executions", json={"code": f"print('queued {i}')"})
            assert response.status_code in (200, 201, 202), response.text
            assert response.json()["status"] == "queued"
            queued.append(response.json())
        assert int(release.redis_cli("LLEN", "executioner")[0]) >= 3

        pod = f"{release.fullname}-redis-0"
        before = release.harness.kubectl_json(
            "get", "pod", pod, kubeconfig=release.kubeconfig, namespace=release.namespace
        )["metadata"]["uid"]
        t0 = time.monotonic()
        release.kubectl("delete", "pod", pod, "--wait=true", namespace=release.namespace, timeout=120)
        deadline = time.monotonic() + 120
        while True:
            p = release.kubectl("get", "pod", pod, "-o", "json", namespace=release.namespace, check=False)
            if p.returncode == 0:
                new = json.loads(p.stdout)
                if new["metadata"]["uid"] != before and any(
                    c["type"] == "Ready" and c["status"] == "True" for c in new["status"].get("conditions", [])
                ):
                    break
            assert time.monotonic() < deadline, "the Redis pod did not come back Ready"
            time.sleep(1)
        print(f"Redis pod deleted and Ready again in {time.monotonic() - t0:.1f} s")

        # every finished execution reads back unchanged (the API reconnects to the new Redis pod)
        deadline = time.monotonic() + 60
        for doc in finished:
            while True:
                try:
                    response = client.get(f"/v1/executions/{doc['id']}")
                    if response.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"the API did not answer after the Redis restart: {response.text}"
                time.sleep(1)
            assert response.json() == doc
        for doc in queued:
            assert _get(client, doc["id"])["status"] == "queued"

        # the queue survived too: a worker runs what was waiting
        _scale_worker(release, 1)
        for i, doc in enumerate(queued):
            done = _finish(client, doc, timeout=180)
            assert done["status"] == "succeeded" and done["stdout"] == f"queued {i}\n", done
        listed = {d["id"] for d in client.get("/v1/executions", params={"limit": 100}).json()["items"]}
        assert {d["id"] for d in finished + queued} <= listed


def test_a_flood_fills_redis_to_maxmemory_and_no_further(release):
    """Writes beyond maxmemory are refused (noeviction) instead of Redis being OOM-killed at its container limit,
    and the API answers 503 to new executions while the store is that full."""
    pod = f"{release.fullname}-redis-0"
    maxmemory = int(release.redis_cli("CONFIG", "GET", "maxmemory")[1])
    flood = (
        "i=0; while [ $i -lt 400 ]; do i=$((i + 1)); "
        'out=$(head -c 1048576 /dev/zero | REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -p 6379 -x SET flood:$i); '
        'case "$out" in OK) ;; *OOM*) echo "refused $i"; exit 0 ;; *) echo "unexpected $i: $out"; exit 1 ;; esac; '
        'done; echo "never refused"'
    )
    out = release.kubectl(
        "exec", pod, "-c", "redis", "--", "sh", "-c", flood, namespace=release.namespace, timeout=300
    ).stdout.strip()
    assert out.startswith("refused "), out
    written = int(out.split()[1]) - 1
    try:
        info = dict(line.split(":", 1) for line in release.redis_cli("INFO", "memory") if ":" in line)
        used = int(info["used_memory"])
        print(f"{written} MiB written before Redis refused; used_memory {used} of maxmemory {maxmemory}")
        # refused when full, not before (a 1 MiB value takes 1.25 MiB in jemalloc's size classes), and not after
        assert maxmemory * 0.9 <= used <= maxmemory + (2 << 20)
        status = release.harness.kubectl_json(
            "get", "pod", pod, kubeconfig=release.kubeconfig, namespace=release.namespace
        )["status"]["containerStatuses"][0]
        assert status["restartCount"] == 0 and not status.get("lastState"), status
        with release.api() as client:
            deadline = time.monotonic() + 30
            while (response := client.post("/v1/executions", json={"code": "print(1)"})).status_code != 503:
                assert time.monotonic() < deadline, f"the API still admits executions: {response.text}"
                time.sleep(1)
            assert "nearly full" in response.json()["detail"], response.text
            release.redis_cli("DEL", *(f"flood:{i}" for i in range(1, written + 2)))
            deadline = time.monotonic() + 30
            while (
                response := client.post("/v1/executions", params={"wait": 30}, json={"code": "print(2)"})
            ).status_code == 503:
                assert time.monotonic() < deadline, "the API still refuses after the store emptied"
                time.sleep(1)
            assert _finish(client, response.json())["stdout"] == "2\n"
    finally:
        release.redis_cli("DEL", *(f"flood:{i}" for i in range(1, 402)))


def test_upgrade_keeps_generated_secrets(release):
    before = (
        release.secret(f"{release.fullname}-api-keys", "api-keys"),
        release.secret(f"{release.fullname}-redis", "redis-password"),
    )
    release.helm_run("upgrade", release.name, str(CHART), *release.install_args())
    after = (
        release.secret(f"{release.fullname}-api-keys", "api-keys"),
        release.secret(f"{release.fullname}-redis", "redis-password"),
    )
    assert after == before
    release.kubectl(
        "rollout",
        "status",
        f"deployment/{release.fullname}-api",
        "--timeout=120s",
        namespace=release.namespace,
        timeout=180,
    )


def test_upgrade_that_would_change_the_claim_template_stops_with_advice(release):
    generation = release.harness.kubectl_json(
        "get", "statefulset", f"{release.fullname}-redis", kubeconfig=release.kubeconfig, namespace=release.namespace
    )["metadata"]["generation"]
    for extra, advice in (
        (["--set", "redis.persistence.size=2Gi"], "was made with 1Gi"),
        (["--set", "redis.persistence.enabled=false"], "keeps its data on a claim"),
    ):
        p = release.helm_run("upgrade", release.name, str(CHART), *release.install_args(), *extra, check=False)
        assert p.returncode != 0 and advice in p.stderr, p.stderr
    after = release.harness.kubectl_json(
        "get", "statefulset", f"{release.fullname}-redis", kubeconfig=release.kubeconfig, namespace=release.namespace
    )
    assert after["metadata"]["generation"] == generation


def test_uninstall_leaves_only_the_crd(release):
    # One request still running at uninstall, one finished: neither may keep a finalizer nobody would remove.
    running = f"running-{uuid.uuid4().hex[:6]}"
    release.harness.apply(
        {
            "apiVersion": "executioner.dev/v1alpha1",
            "kind": "ExecutionRequest",
            "metadata": {"name": running},
            "spec": {"code": "import time\ntime.sleep(50)", "limits": {"timeoutSeconds": 60}},
        },
        kubeconfig=release.kubeconfig,
        namespace=release.namespace,
    )
    release.harness.wait(
        release.kubeconfig, release.namespace, f"executionrequest/{running}", "jsonpath={.status.phase}=Running", 120
    )
    release.helm_run("uninstall", release.name, "--wait")
    release.installed = False
    requests = release.harness.kubectl_json("get", "exr", kubeconfig=release.kubeconfig, namespace=release.namespace)
    assert {r["metadata"]["name"] for r in requests["items"]} >= {running}
    for request in requests["items"]:
        assert not request["metadata"].get("finalizers"), request["metadata"]
    status = next(r for r in requests["items"] if r["metadata"]["name"] == running)["status"]
    assert status["phase"] == "Error"
    assert status["error"] == "the executioner release was uninstalled before this request finished"
    deleted = release.kubectl("delete", "exr", "--all", "--timeout=30s", namespace=release.namespace, check=False)
    assert deleted.returncode == 0, deleted.stderr
    kinds = "deployments,statefulsets,services,secrets,serviceaccounts,networkpolicies,roles,rolebindings,pods"
    deadline = time.monotonic() + 150  # pods terminate within their grace period (the worker's is 90 s)
    while left := release.kubectl(
        "get", kinds, "-l", "app.kubernetes.io/instance=e2e", "-o", "name", namespace=release.namespace
    ).stdout.split():
        assert time.monotonic() < deadline and all(n.startswith("pod/") for n in left), left
        time.sleep(2)
    # the Redis claim outlives the release (redis.persistence.deleteOnUninstall is false by default)
    claim = release.harness.kubectl_json(
        "get", "pvc", f"data-{release.fullname}-redis-0", kubeconfig=release.kubeconfig, namespace=release.namespace
    )
    assert claim["status"]["phase"] == "Bound" and not claim["metadata"].get("ownerReferences")
    cluster_wide = release.kubectl("get", "clusterroles,clusterrolebindings", "-o", "name").stdout.split()
    assert not [n for n in cluster_wide if release.fullname in n], cluster_wide
    deadline = time.monotonic() + 180  # the sandbox namespace goes with the release (its Jobs with it)
    while release.kubectl("get", "namespace", release.sandbox, check=False).returncode == 0:
        assert time.monotonic() < deadline, f"namespace {release.sandbox} is still there"
        time.sleep(2)
    crd = release.harness.kubectl_json("get", "crd", "executionrequests.executioner.dev", kubeconfig=release.kubeconfig)
    assert crd["spec"]["names"]["shortNames"] == ["exr"]
    assert crd["spec"]["versions"][0]["name"] == "v1alpha1"
