"""A release installed into a sandbox namespace that exists already (`sandbox.createNamespace=false`), on a real
cluster: the warm pool's permissions (the worker's pods/attach, the operator's Job creation) hold in the sandbox
namespace and nowhere else, and `helm uninstall`, which leaves that namespace, leaves no pool Job in it (pool Jobs have
no deadline: nothing would ever end them).

The tests share one release and run in file order (the last one uninstalls it)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from executioner.kube import POOL_LABEL
from executioner.settings import Settings
from executioner.worker.backends.sandbox_pods import build_pool_job

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "executioner"
LOCAL_VALUES = REPO / "hack" / "chart" / "values-local.yaml"

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]
RELEASE = "kept"
FULLNAME = f"{RELEASE}-executioner"


@pytest.fixture(scope="module")
def installed(helm, kubeconfig, cluster_harness, chart_images):
    """(release namespace, sandbox namespace) of an install whose sandbox namespace was made before it."""
    namespace = cluster_harness.make_namespace(kubeconfig, prefix="t-chart-kept")
    sandbox = cluster_harness.make_namespace(kubeconfig, prefix="t-chart-kept-sbx")
    base = [helm, "--kubeconfig", kubeconfig, "-n", namespace]
    try:
        args = ["-f", LOCAL_VALUES, "--set", f"sandbox.namespace={sandbox}", "--set", "sandbox.createNamespace=false"]
        # no claim to keep after the test; --take-ownership: the CRD is one per cluster, other releases made it theirs
        args += ["--set", "redis.persistence.enabled=false", "--take-ownership", "--wait", "--timeout", "5m"]
        p = subprocess.run([*base, "install", RELEASE, CHART, *args], capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        yield namespace, sandbox
    finally:
        subprocess.run([*base, "uninstall", RELEASE, "--wait"], capture_output=True, timeout=600)
        cluster_harness.delete_namespace(kubeconfig, sandbox)
        cluster_harness.delete_namespace(kubeconfig, namespace)


def can_i(harness, kubeconfig, release_namespace, component, verb, resource, namespace) -> bool:
    """`kubectl auth can-i` as a component's ServiceAccount; `resource` may name a subresource (pods/attach)."""
    resource, _, subresource = resource.partition("/")  # kubectl reads "pods/attach" as the pod named attach
    p = harness.kubectl(
        "auth",
        "can-i",
        verb,
        resource,
        *(["--subresource", subresource] if subresource else []),
        "--as",
        f"system:serviceaccount:{release_namespace}:{FULLNAME}-{component}",
        kubeconfig=kubeconfig,
        namespace=namespace,
        check=False,
    )
    assert p.stdout.strip() in ("yes", "no"), p.stdout + p.stderr
    return p.stdout.strip() == "yes"


def test_the_attach_permission_exists_only_in_the_sandbox_namespace(installed, kubeconfig, cluster_harness):
    namespace, sandbox = installed
    for verb in ("create", "get"):  # WebSocket attaches need both on current API servers
        assert can_i(cluster_harness, kubeconfig, namespace, "worker", verb, "pods/attach", sandbox)
        for elsewhere in (namespace, "default"):
            assert not can_i(cluster_harness, kubeconfig, namespace, "worker", verb, "pods/attach", elsewhere)
    # nothing else may attach or exec into sandbox pods, not even the worker exec
    assert not can_i(cluster_harness, kubeconfig, namespace, "worker", "create", "pods/exec", sandbox)
    for component in ("api", "operator"):
        assert not can_i(cluster_harness, kubeconfig, namespace, component, "create", "pods/attach", sandbox)


def test_the_operator_may_create_jobs_only_in_the_sandbox_namespace(installed, kubeconfig, cluster_harness):
    namespace, sandbox = installed
    assert can_i(cluster_harness, kubeconfig, namespace, "operator", "create", "jobs.batch", sandbox)
    for elsewhere in (namespace, "default"):
        assert not can_i(cluster_harness, kubeconfig, namespace, "operator", "create", "jobs.batch", elsewhere)


def test_uninstall_leaves_no_pool_job_in_the_namespace_it_keeps(installed, helm, kubeconfig, cluster_harness):
    namespace, sandbox = installed
    # the pool the operator keeps (the chart's default: two python Jobs), and a Job that is no pool's (suspended: no
    # pod needed), which the uninstall must leave alone
    deadline = time.monotonic() + 180
    while len(pool_jobs := _pool_jobs(cluster_harness, kubeconfig, sandbox)) < 2:
        assert time.monotonic() < deadline, f"the operator made no pool of two: {pool_jobs}"
        time.sleep(1)
    template = build_pool_job("python", Settings(backend="kubernetes"))["spec"]["template"]
    other = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "not-a-pool-job"},
        "spec": {"suspend": True, "template": {**template, "metadata": {}}},
    }
    cluster_harness.kubectl("create", "-f", "-", input=json.dumps(other), kubeconfig=kubeconfig, namespace=sandbox)

    p = subprocess.run(
        [helm, "--kubeconfig", kubeconfig, "-n", namespace, "uninstall", RELEASE, "--wait"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert not _pool_jobs(cluster_harness, kubeconfig, sandbox)
    left = cluster_harness.kubectl_json("get", "jobs", kubeconfig=kubeconfig, namespace=sandbox)["items"]
    assert [job["metadata"]["name"] for job in left] == ["not-a-pool-job"]
    # the hook's own objects went with it (hook-succeeded), the namespace stays
    roles = cluster_harness.kubectl_json("get", "roles,rolebindings", kubeconfig=kubeconfig, namespace=sandbox)
    assert not roles["items"]


def _pool_jobs(harness, kubeconfig, namespace) -> list[str]:
    jobs = harness.kubectl_json("get", "jobs", "-l", POOL_LABEL, kubeconfig=kubeconfig, namespace=namespace)["items"]
    return [job["metadata"]["name"] for job in jobs]
