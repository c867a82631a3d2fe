"""From `EXECUTIONER_BACKEND=kubernetes make up` to `make chart-install` without manual steps, on a real cluster.

`make up` creates the sandbox namespace and its policies from manifests/ (operator/prerequisites.py) and marks them
`app.kubernetes.io/managed-by: executioner-up`; `make chart-install` hands exactly those to the Helm release
(hack/chart/adopt-make-up-objects.sh) before `helm upgrade --install`, and refuses to touch anything else in the way.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from executioner.operator.prerequisites import ensure_prerequisites

REPO = Path(__file__).resolve().parents[2]
LOCAL_VALUES = REPO / "hack" / "chart" / "values-local.yaml"
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]
ADOPT = REPO / "hack" / "chart" / "adopt-make-up-objects.sh"
MANAGED_BY = "app.kubernetes.io/managed-by"


def metadata(harness, kubeconfig, *what, namespace=None) -> dict:
    return harness.kubectl_json("get", *what, kubeconfig=kubeconfig, namespace=namespace)["metadata"]


def adopt(kubeconfig, helm, harness, release, namespace, sandbox) -> subprocess.CompletedProcess:
    env = dict(os.environ, KUBECONFIG=kubeconfig, HELM=helm, KUBECTL=harness.kubectl_bin())
    return subprocess.run(
        [str(ADOPT), release, namespace, "-f", str(LOCAL_VALUES), "--set", f"sandbox.namespace={sandbox}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def make(target, kubeconfig, release, namespace, sandbox, timeout) -> subprocess.CompletedProcess:
    """`make <target>` as a user runs it after `make up`, with the images already loaded (chart_images)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXECUTIONER_", "MAKE"))}
    env["KUBECONFIG"] = kubeconfig
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            target,
            f"CHART_RELEASE={release}",
            f"CHART_NAMESPACE={namespace}",
            "CHART_BUILD_IMAGES=0",
            f"CHART_LOCAL_VALUES={LOCAL_VALUES}",
            f"CHART_ARGS=--set sandbox.namespace={sandbox}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_objects_not_made_by_make_up_are_refused(kubeconfig, helm, cluster_harness):
    name = f"t-chart-foreign-{uuid.uuid4().hex[:8]}"
    cluster_harness.kubectl("create", "namespace", name, kubeconfig=kubeconfig)
    try:
        p = adopt(kubeconfig, helm, cluster_harness, "foreign", "t-chart-foreign-home", name)
        assert p.returncode != 0, p.stdout + p.stderr
        assert f"Namespace/{name} ({MANAGED_BY}=<none>)" in p.stderr, p.stderr
        assert "not created by `make up`" in p.stderr, p.stderr
        meta = metadata(cluster_harness, kubeconfig, "namespace", name)
        assert not any(k.startswith("meta.helm.sh/") for k in meta.get("annotations", {})), meta
        assert MANAGED_BY not in meta.get("labels", {}), meta
    finally:
        cluster_harness.delete_namespace(kubeconfig, name)


def test_chart_install_adopts_what_make_up_created(kubeconfig, helm, cluster_harness, chart_images):
    release = "upchart"
    namespace = f"t-chart-up-{uuid.uuid4().hex[:8]}"
    sandbox = f"{namespace}-sbx"
    installed = False
    try:
        # what `EXECUTIONER_BACKEND=kubernetes make up` does before it starts anything
        created = ensure_prerequisites(cluster_harness.api_client(kubeconfig), sandbox)
        assert {
            f"Namespace/{sandbox}",
            "NetworkPolicy/executioner-sandbox-deny-all",
            "ResourceQuota/executioner-sandbox",
            "LimitRange/executioner-sandbox",
        } <= set(created), created
        before = metadata(cluster_harness, kubeconfig, "namespace", sandbox)
        assert before["labels"][MANAGED_BY] == "executioner-up"
        policy = metadata(
            cluster_harness, kubeconfig, "networkpolicy", "executioner-sandbox-deny-all", namespace=sandbox
        )
        assert policy["labels"][MANAGED_BY] == "executioner-up"

        p = make("chart-install", kubeconfig, release, namespace, sandbox, timeout=600)
        installed = True
        assert p.returncode == 0, f"make chart-install failed:\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
        assert f"adopting Namespace/{sandbox}" in p.stderr, p.stderr
        info = json.loads(
            subprocess.run(
                [helm, "status", release, "-n", namespace, "--kubeconfig", kubeconfig, "-o", "json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert info["info"]["status"] == "deployed", info["info"]

        # the same namespace (not a new one), now the release's; so are the policies make up made in it
        after = metadata(cluster_harness, kubeconfig, "namespace", sandbox)
        assert after["uid"] == before["uid"]
        for meta in (
            after,
            metadata(cluster_harness, kubeconfig, "networkpolicy", "executioner-sandbox-deny-all", namespace=sandbox),
        ):
            assert meta["labels"][MANAGED_BY] == "Helm", meta
            assert meta["annotations"]["meta.helm.sh/release-name"] == release, meta
            assert meta["annotations"]["meta.helm.sh/release-namespace"] == namespace, meta
        manifest = subprocess.run(
            [helm, "get", "manifest", release, "-n", namespace, "--kubeconfig", kubeconfig],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"kind: Namespace\nmetadata:\n  name: {sandbox}\n" in manifest

        # a second run finds everything the release's already and changes nothing
        again = adopt(kubeconfig, helm, cluster_harness, release, namespace, sandbox)
        assert again.returncode == 0 and "adopting" not in again.stderr, again.stderr

        p = make("chart-uninstall", kubeconfig, release, namespace, sandbox, timeout=300)
        assert p.returncode == 0, f"make chart-uninstall failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        installed = False
        deadline = time.monotonic() + 120  # the sandbox namespace went with the release
        while cluster_harness.kubectl("get", "namespace", sandbox, kubeconfig=kubeconfig, check=False).returncode == 0:
            assert time.monotonic() < deadline, f"namespace {sandbox} is still there after the uninstall"
            time.sleep(2)
        left = cluster_harness.kubectl(
            "get",
            "deployments,statefulsets,services,secrets,roles,rolebindings",
            "-o",
            "name",
            "-l",
            f"app.kubernetes.io/instance={release}",
            kubeconfig=kubeconfig,
            namespace=namespace,
        ).stdout.split()
        assert not left, left
    finally:
        if installed:
            subprocess.run(
                [helm, "uninstall", release, "-n", namespace, "--kubeconfig", kubeconfig, "--wait"],
                capture_output=True,
                timeout=300,
            )
        cluster_harness.delete_namespace(kubeconfig, sandbox)
        cluster_harness.delete_namespace(kubeconfig, namespace)
