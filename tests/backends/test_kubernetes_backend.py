"""What only the Kubernetes backend does: Job spec, admission, fail-closed, cleanup, cancellation, failure reasons."""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import textwrap
import threading
import time

import httpx
import pytest
import yaml

from executioner.kube import EXECUTION_LABEL, kubernetes_api_client
from executioner.models import Execution, InputFile, Limits, Outcome, Status
from executioner.settings import Settings
from executioner.worker.backends.base import SandboxUnavailable
from executioner.worker.backends.kubernetes import KubernetesBackend, build_sandbox_job
from helpers import kube
from helpers.programs import new_marker, sleeper, wait_until
from helpers.stack import run_program

pytestmark = pytest.mark.cluster


def execution(code: str = "print('hi')", stdin: str = "", timeout: float = 5, memory_mb: int = 128) -> Execution:
    return Execution.new(
        code=code,
        stdin=stdin,
        limits=Limits(timeout_seconds=timeout, memory_mb=memory_mb),
        backend="kubernetes",
        status=Status.running,
    )


def test_sandbox_pods_pass_restricted_admission(kubernetes_stack, kubeconfig):
    job = build_sandbox_job(execution(), Settings(sandbox_image="executioner/sandbox:0.1.0"))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "admission-check"},
        "spec": job["spec"]["template"]["spec"],
    }
    result = kube.kubectl(
        kubeconfig,
        "create",
        "--dry-run=server",
        "-n",
        kubernetes_stack.namespace,
        "-f",
        "-",
        input=yaml.safe_dump(pod),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "violate" not in result.stderr and "Warning" not in result.stderr
    labels = json.loads(kube.kubectl(kubeconfig, "get", "namespace", kubernetes_stack.namespace, "-o", "json").stdout)[
        "metadata"
    ]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def leftovers(stack, execution_id: str) -> list[str]:
    return kube.execution_objects(stack.kubeconfig, stack.namespace, execution_id)


@pytest.fixture
def run_on_cluster(kubernetes_stack):
    with httpx.Client(base_url=kubernetes_stack.url, timeout=120) as client:
        yield lambda code, **kw: run_program(client, code, **kw)


def test_nothing_is_left_once_the_result_is_recorded(kubernetes_stack, run_on_cluster):
    doc = run_on_cluster("print('clean')")
    assert doc["stdout"] == "clean\n"
    assert wait_until(lambda: not leftovers(kubernetes_stack, doc["id"]), 30), leftovers(kubernetes_stack, doc["id"])


def test_code_and_stdin_up_to_their_limits_arrive_whole_and_code_stays_out_of_logs(kubernetes_stack, run_on_cluster):
    marker = new_marker("secret-code")
    code = f"import sys, hashlib\ndata = sys.stdin.read()\nprint(len(data), hashlib.sha256(data.encode()).hexdigest()[:12])  # {marker}\n"
    code += "#" * (64 * 1024 - len(code.encode()) - 1) + "\n"
    stdin = ("0123456789abcdef" * 65536)[: 1024 * 1024]
    doc = run_on_cluster(code, stdin=stdin, timeout=20)

    assert doc["status"] == "succeeded", doc
    assert doc["stdout"] == f"{len(stdin)} {hashlib.sha256(stdin.encode()).hexdigest()[:12]}\n"
    for log in ("worker.log", "api.log"):
        assert marker not in (kubernetes_stack.logs / log).read_text()


def test_cancel_deletes_the_job(kubernetes_stack):
    with httpx.Client(base_url=kubernetes_stack.url, timeout=60) as api:
        doc = api.post(
            "/v1/executions", json={"code": sleeper(new_marker("k8s-cancel")), "limits": {"timeout_seconds": 60}}
        ).json()

        def pod_running():
            return (
                kube.execution_pod_phase(kubernetes_stack.kubeconfig, kubernetes_stack.namespace, doc["id"])
                == "Running"
            )

        assert wait_until(pod_running, 60)
        response = api.delete(f"/v1/executions/{doc['id']}")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        assert wait_until(lambda: not leftovers(kubernetes_stack, doc["id"]), 30), leftovers(
            kubernetes_stack, doc["id"]
        )
        assert api.get(f"/v1/executions/{doc['id']}").json()["status"] == "cancelled"


def test_fail_closed_without_the_network_policy(kubernetes_stack):
    stack = kubernetes_stack
    policies = kube.kubectl(stack.kubeconfig, "get", "networkpolicy", "-n", stack.namespace, "-o", "yaml").stdout
    kube.kubectl(stack.kubeconfig, "delete", "networkpolicy", "--all", "-n", stack.namespace)
    try:
        with httpx.Client(base_url=stack.url, timeout=60) as api:
            doc = api.post("/v1/executions", params={"wait": 30}, json={"code": "print('must not run')"}).json()
        assert doc["status"] == "error"
        assert "NetworkPolicy" in doc["error"]
        assert doc["stdout"] == ""
        assert leftovers(stack, doc["id"]) == []
    finally:
        restored = yaml.safe_load(policies)
        for item in restored["items"]:
            for field in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
                item["metadata"].pop(field, None)
        kube.kubectl(stack.kubeconfig, "apply", "-f", "-", input=yaml.safe_dump(restored))


def test_twenty_concurrent_executions(kubernetes_stack):
    def run(i: int) -> dict:
        with httpx.Client(base_url=kubernetes_stack.url, timeout=180) as api:
            doc = api.post(
                "/v1/executions",
                params={"wait": 30},
                json={"code": f"print({i} * {i})", "limits": {"timeout_seconds": 10}},
            ).json()
            while doc["status"] in ("queued", "running"):
                doc = api.get(f"/v1/executions/{doc['id']}", params={"wait": 30}).json()
            return doc

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        documents = list(pool.map(run, range(20)))
    assert [doc["status"] for doc in documents] == ["succeeded"] * 20, [d["error"] for d in documents if d["error"]]
    assert [doc["stdout"] for doc in documents] == [f"{i * i}\n" for i in range(20)]


@pytest.fixture
def direct_backend(kubernetes_stack):
    """The backend in this process, with the worker's own least-privilege credentials."""

    def make(**overrides) -> KubernetesBackend:
        settings = Settings(
            **{
                "sandbox_namespace": kubernetes_stack.namespace,
                "sandbox_image": kubernetes_stack.env["EXECUTIONER_SANDBOX_IMAGE"],
                **overrides,
            }
        )
        return KubernetesBackend(settings, kubernetes_api_client(kubernetes_stack.env["KUBECONFIG"]))

    return make


def test_an_image_that_cannot_be_pulled_is_an_error_with_a_reason(direct_backend):
    backend = direct_backend(sandbox_image="executioner/no-such-image:0.0.0")
    job = execution()
    try:
        outcome = backend.run(job)
    finally:
        backend.cleanup(job.id)
    assert outcome.status is Status.error
    assert "executioner/no-such-image:0.0.0 cannot be pulled" in outcome.error


def test_an_unschedulable_sandbox_is_an_error_with_a_reason(direct_backend):
    backend = direct_backend(sandbox_node_selector={"executioner.dev/no-such-node": "true"}, schedule_timeout_seconds=3)
    job = execution()
    try:
        outcome = backend.run(job)
    finally:
        backend.cleanup(job.id)
    assert outcome.status is Status.error
    assert "no node could run the sandbox" in outcome.error


def stdin_secret_held_back(backend: KubernetesBackend, monkeypatch, seconds: float | None) -> None:
    """The backend's stdin Secret reaches the API server `seconds` after the worker makes it (None: never), so the
    Job is resumed without it: its pod is scheduled, then waits in ContainerCreating for a volume it cannot mount."""
    create = backend.core.create_namespaced_secret

    def create_late(namespace, body, **kwargs):
        if not body["metadata"]["name"].endswith("-stdin"):
            return create(namespace, body, **kwargs)
        if seconds is not None:
            threading.Timer(seconds, create, args=(namespace, body)).start()
        return body

    monkeypatch.setattr(backend.core, "create_namespaced_secret", create_late)


def test_a_sandbox_that_never_starts_is_an_error_saying_what_it_waited_on(
    direct_backend, kubernetes_stack, monkeypatch
):
    """No program ran, so no time limit passed: `error` with the reason, never `timed_out`."""
    backend = direct_backend(schedule_timeout_seconds=6, grace_seconds=1)
    stdin_secret_held_back(backend, monkeypatch, seconds=None)
    job = execution("print('never runs')", timeout=1)
    try:
        outcome = backend.run(job)
    finally:
        backend.cleanup(job.id)
    assert (outcome.status, outcome.exit_code, outcome.stdout) == (Status.error, None, ""), outcome
    assert outcome.error.startswith(
        "the sandbox never started within 6 s: its container was waiting in ContainerCreating"
    ), outcome.error
    assert wait_until(lambda: leftovers(kubernetes_stack, job.id) == [], 30), leftovers(kubernetes_stack, job.id)


def test_a_slow_start_leaves_the_program_its_whole_time_limit(direct_backend, monkeypatch):
    """The pod waits about 5 s for its stdin volume, longer than the time limit and grace together; the program
    then still gets its whole time limit (the Job's deadline used to stop the pod before it started)."""
    backend = direct_backend(grace_seconds=1)
    stdin_secret_held_back(backend, monkeypatch, seconds=5)
    job = execution("import time\ntime.sleep(2)\nprint('slept')", timeout=3)
    try:
        outcome = backend.run(job)
    finally:
        backend.cleanup(job.id)
    assert (outcome.status, outcome.stdout) == (Status.succeeded, "slept\n"), outcome


def test_a_deleted_pod_is_an_error_with_a_reason(direct_backend, kubernetes_stack):
    backend = direct_backend()
    job = execution("import time\ntime.sleep(30)", timeout=40)
    selector = f"{EXECUTION_LABEL}={job.id}"

    def delete_pod_when_running():
        def running():
            return (
                kube.kubectl(
                    kubernetes_stack.kubeconfig,
                    "get",
                    "pods",
                    "-n",
                    kubernetes_stack.namespace,
                    "-l",
                    selector,
                    "-o",
                    "jsonpath={.items[*].status.phase}",
                ).stdout
                == "Running"
            )

        if wait_until(running, 60):
            kube.kubectl(
                kubernetes_stack.kubeconfig,
                "delete",
                "pods",
                "-n",
                kubernetes_stack.namespace,
                "-l",
                selector,
                "--grace-period=0",
                "--force",
            )

    deleter = threading.Thread(target=delete_pod_when_running)
    deleter.start()
    try:
        started = time.monotonic()
        outcome = backend.run(job)
    finally:
        deleter.join()
        backend.cleanup(job.id)
    assert outcome.status is Status.error
    assert "deleted" in outcome.error
    assert time.monotonic() - started < 30


def test_a_namespace_without_the_policy_raises_before_creating_anything(direct_backend, kubernetes_stack):
    namespace = kube.unique("exr-nopolicy")
    kube.kubectl(kubernetes_stack.kubeconfig, "create", "namespace", namespace)
    try:
        backend = KubernetesBackend(
            Settings(sandbox_namespace=namespace), kubernetes_api_client(kubernetes_stack.kubeconfig)
        )
        with pytest.raises(SandboxUnavailable, match="no deny-all NetworkPolicy"):
            backend.run(execution())
        assert kube.kubectl(kubernetes_stack.kubeconfig, "get", "jobs", "-n", namespace, "-o", "name").stdout == ""
    finally:
        kube.delete_namespaces(kubernetes_stack.kubeconfig, namespace)


OPENING_POLICIES = {
    "allow-all-egress": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]},
    "dns-egress": {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "executioner-sandbox"}},
        "policyTypes": ["Egress"],
        "egress": [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}],
    },
}


@pytest.mark.parametrize("added", sorted(OPENING_POLICIES))
def test_fail_closed_when_another_policy_opens_sandbox_traffic(kubernetes_stack, added):
    """NetworkPolicies add up: a deny-all proves nothing once another policy allows something."""
    stack = kubernetes_stack
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": added, "namespace": stack.namespace},
        "spec": OPENING_POLICIES[added],
    }
    kube.kubectl(stack.kubeconfig, "apply", "-f", "-", input=yaml.safe_dump(policy))
    try:
        with httpx.Client(base_url=stack.url, timeout=60) as api:
            doc = api.post("/v1/executions", params={"wait": 30}, json={"code": "print('must not run')"}).json()
        assert doc["status"] == "error"
        assert doc["error"] == (
            f"NetworkPolicy {added} in {stack.namespace} allows traffic to or from sandbox pods; "
            "refusing to run code with network access"
        )
        assert doc["stdout"] == ""
        assert leftovers(stack, doc["id"]) == []
    finally:
        kube.kubectl(stack.kubeconfig, "delete", "networkpolicy", added, "-n", stack.namespace)


def test_a_planted_input_secret_is_refused_and_never_mounted(direct_backend, kubernetes_stack):
    """The Job exists (suspended) before its Secrets: whoever creates a Secret of the expected name first must
    not get their input run."""
    backend = direct_backend()
    run = execution(code="print('the real code')")
    name = f"exec-{run.id}-code"
    planted = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": kubernetes_stack.namespace},
        "stringData": {"code": "print('planted')"},
    }
    kube.kubectl(kubernetes_stack.kubeconfig, "apply", "-f", "-", input=yaml.safe_dump(planted))
    try:
        with pytest.raises(SandboxUnavailable, match=f"Secret {name} already existed"):  # the worker's `error`
            backend.run(run)
        assert wait_until(lambda: leftovers(kubernetes_stack, run.id) == [], 30)
    finally:
        kube.kubectl(kubernetes_stack.kubeconfig, "delete", "secret", name, "-n", kubernetes_stack.namespace)


def test_fail_closed_when_the_sandbox_account_would_mount_a_token(direct_backend, kubernetes_stack):
    namespace = kubernetes_stack.namespace

    def automount(value: bool) -> None:
        patch = json.dumps({"automountServiceAccountToken": value})
        kube.kubectl(
            kubernetes_stack.kubeconfig, "patch", "serviceaccount", "executioner-sandbox", "-n", namespace, "-p", patch
        )

    automount(True)
    try:
        with pytest.raises(SandboxUnavailable) as refused:
            direct_backend().run(execution())
    finally:
        automount(False)
    assert str(refused.value) == (
        f"ServiceAccount executioner-sandbox in {namespace} does not set automountServiceAccountToken: false; "
        "refusing to run code that could get a token"
    )


# Runtimes, input files and artifacts -------------------------------------------------------------------------------


def data_execution(code: str, files: dict[str, bytes] | None = None, runtime: str = "python-data") -> Execution:
    run = execution(code=textwrap.dedent(code), timeout=30, memory_mb=384)
    inputs = [
        InputFile(path=path, content_base64=base64.b64encode(data).decode()) for path, data in (files or {}).items()
    ]
    return run.model_copy(update={"runtime": runtime, "files": inputs})


@pytest.fixture
def run_direct(direct_backend, kubernetes_stack):
    """Runs one execution on the backend (with the stack's runtime images) and cleans up after it."""

    def run(job: Execution, **overrides) -> Outcome:
        images = json.loads(kubernetes_stack.env["EXECUTIONER_RUNTIME_IMAGES"])
        backend = direct_backend(runtime_images=images, **overrides)
        try:
            return backend.run(job)
        finally:
            backend.cleanup(job.id)

    return run


def test_python_data_has_numpy_pandas_scipy_and_matplotlib_and_python_has_none(run_direct):
    outcome = run_direct(
        data_execution(
            """
            import matplotlib, numpy, pandas, scipy.stats
            frame = pandas.DataFrame({"x": numpy.arange(4)})
            print(int(frame["x"].sum()), round(float(scipy.stats.norm.cdf(0)), 2), matplotlib.get_backend())
            """
        )
    )
    assert (outcome.status, outcome.stdout) == (Status.succeeded, "6 0.5 Agg\n"), outcome
    for module in ("numpy", "pandas", "matplotlib"):
        plain = run_direct(data_execution(f"import {module}", runtime="python"))
        assert plain.status is Status.failed and f"No module named '{module}'" in plain.stderr, plain


def test_a_csv_is_read_by_pandas_and_its_plot_comes_back_as_a_png(run_direct):
    csv = b"x,y\n1,2\n2,4\n3,8\n"
    outcome = run_direct(
        data_execution(
            """
            import pandas
            frame = pandas.read_csv("in/points.csv")
            print(int(frame["y"].sum()))
            frame.plot(x="x", y="y").get_figure().savefig("outputs/plot.png")
            """,
            files={"in/points.csv": csv, "notes.txt": bytes(range(256))},
        )
    )
    assert (outcome.status, outcome.stdout) == (Status.succeeded, "14\n"), outcome
    [plot] = outcome.artifacts
    assert plot.path == "plot.png"
    assert base64.b64decode(plot.content_base64).startswith(b"\x89PNG\r\n\x1a\n")
    assert outcome.artifacts_truncated is False


def test_a_two_mib_artifact_comes_back_whole_through_the_pod_log(run_direct):
    """2 MiB in base64 is one line of 2.8 MB: the runtime writes it in 16 KiB partial lines, the kubelet joins them."""
    outcome = run_direct(
        data_execution(
            """
            import hashlib, os
            data = os.urandom(2 * 1024 * 1024)
            open("outputs/big.bin", "wb").write(data)
            print(hashlib.sha256(data).hexdigest())
            """,
            runtime="python",
        )
    )
    assert outcome.status is Status.succeeded, outcome
    [big] = outcome.artifacts
    data = base64.b64decode(big.content_base64)
    assert len(data) == 2 * 1024 * 1024 and hashlib.sha256(data).hexdigest() == outcome.stdout.strip()


def test_artifacts_past_the_caps_are_dropped_and_flagged(run_direct):
    code = """
        for i in range(3):
            open(f"outputs/{i}.txt", "w").write("x" * 600)
        """
    counted = run_direct(data_execution(code, runtime="python"), max_artifacts=2)
    assert counted.status is Status.succeeded and counted.artifacts_truncated is True
    assert [a.path for a in counted.artifacts] == ["0.txt", "1.txt"]
    sized = run_direct(data_execution(code, runtime="python"), max_artifact_bytes=1000)
    assert sized.status is Status.succeeded and sized.artifacts_truncated is True
    assert [a.path for a in sized.artifacts] == ["0.txt"]


def test_a_planted_input_file_secret_is_refused_and_never_mounted(direct_backend, kubernetes_stack):
    backend = direct_backend()
    run = data_execution("print(open('data.csv').read())", files={"data.csv": b"real"}, runtime="python")
    name = f"exec-{run.id}-file-0"
    planted = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": kubernetes_stack.namespace},
        "data": {"content": base64.b64encode(b"planted").decode()},
    }
    kube.kubectl(kubernetes_stack.kubeconfig, "apply", "-f", "-", input=yaml.safe_dump(planted))
    try:
        with pytest.raises(SandboxUnavailable, match=f"Secret {name} already existed"):
            backend.run(run)
        assert wait_until(lambda: leftovers(kubernetes_stack, run.id) == [], 30)
    finally:
        kube.kubectl(kubernetes_stack.kubeconfig, "delete", "secret", name, "-n", kubernetes_stack.namespace)
