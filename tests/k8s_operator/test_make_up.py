"""`EXECUTIONER_BACKEND=kubernetes executioner up`: prerequisites from manifests/, then the whole stack on the cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from helpers import kube
from helpers.stack import free_port

pytestmark = pytest.mark.cluster


def test_up_in_kubernetes_mode_creates_what_is_missing_and_runs_code(kubeconfig, sandbox_image, crd, tmp_path):
    namespace = kube.unique("exr-up")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
    env.update(
        EXECUTIONER_BACKEND="kubernetes",
        EXECUTIONER_SANDBOX_NAMESPACE=namespace,
        EXECUTIONER_SANDBOX_IMAGE=sandbox_image,
        EXECUTIONER_PORT=str(port),
        EXECUTIONER_STATE_DIR=str(tmp_path / "state"),  # never a developer's own state
        KUBECONFIG=kubeconfig,
    )
    with open(tmp_path / "up.log", "wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-P", "-m", "executioner.cli", "up"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "serving http" not in (tmp_path / "up.log").read_text() and time.monotonic() < deadline:
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            time.sleep(0.2)
        output = (tmp_path / "up.log").read_text()
        assert f"created Namespace/{namespace}" in output
        assert "created NetworkPolicy/executioner-sandbox-deny-all" in output
        labels = kube.kubectl(kubeconfig, "get", "namespace", namespace, "-o", "jsonpath={.metadata.labels}").stdout
        assert '"pod-security.kubernetes.io/enforce":"restricted"' in labels
        assert "keeps a warm pool of sandbox pods" in output

        def run(code: str) -> dict:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=90) as api:
                doc = api.post("/v1/executions", params={"wait": 30}, json={"code": code}).json()
                while doc["status"] in ("queued", "running"):
                    doc = api.get(f"/v1/executions/{doc['id']}", params={"wait": 30}).json()
            return doc

        doc = run("print('from the cluster')")
        assert doc["status"] == "succeeded", doc
        assert doc["backend"] == "kubernetes"
        assert doc["stdout"] == "from the cluster\n"
        # the operator keeps the default warm pool, and a pool pod serves the next execution
        kube.wait_for_pool(kubeconfig, namespace, 2)
        doc = run("print('warm')")
        assert (doc["status"], doc["stdout"], doc["sandbox_start"]) == ("succeeded", "warm\n", "warm"), doc
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        up.wait(timeout=30)
        kube.delete_namespaces(kubeconfig, namespace)
