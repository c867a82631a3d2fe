"""The path for any cluster: `make images REGISTRY=... TAG=...` pushes the images to a real registry, and
`make chart-install REGISTRY=... TAG=...` installs the chart with no local-cluster specifics but those passed
explicitly, and the cluster pulls every image from that registry.

The registry is the pinned distribution registry (hack/cluster/build.sh registry) on $LOCAL_REGISTRY (127.0.0.1:5333),
plain HTTP; the cluster's containerd pulls from it over loopback (the one registry its hosts.toml files let through).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from helpers import kube

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]


def registry_binary_and_address() -> tuple[str, str]:
    p = subprocess.run(
        [
            "bash",
            "-c",
            '. hack/cluster/common.sh && hack/cluster/build.sh registry >&2 && echo "$REGISTRY_BIN $LOCAL_REGISTRY"',
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert p.returncode == 0, f"building the registry failed:\n{p.stderr[-3000:]}"
    binary, address = p.stdout.split()
    return binary, address


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A real image registry on the loopback address the cluster's containerd pulls from (hack/cluster/up.sh)."""
    binary, address = registry_binary_and_address()
    storage = tmp_path_factory.mktemp("registry")
    env = {
        **os.environ,
        "REGISTRY_HTTP_ADDR": address,
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(storage),
        "OTEL_TRACES_EXPORTER": "none",
    }
    config = storage / "config.yml"
    config.write_text("version: 0.1\nstorage:\n  filesystem: {}\nhttp:\n  addr: 127.0.0.1:5000\n")
    log = (storage / "registry.log").open("w")
    process = subprocess.Popen([binary, "serve", str(config)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{address}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/v2/", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, (storage / "registry.log").read_text()
        time.sleep(0.3)
    yield address
    process.terminate()
    process.wait(10)


def make(*args: str, kubeconfig: str | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXECUTIONER_", "MAKE"))}
    env["EXECUTIONER_LOCAL_BASE_IMAGES"] = "1"  # this machine reaches no image registry for the base images
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_images_are_pushed_and_the_chart_installs_from_the_registry(registry, kubeconfig, cluster_harness, helm):
    tag = f"t-{uuid.uuid4().hex[:8]}"
    pushed = make("images", f"REGISTRY={registry}", f"TAG={tag}", "TLS_VERIFY=false")
    assert pushed.returncode == 0, f"make images failed:\n{pushed.stdout[-3000:]}\n{pushed.stderr[-5000:]}"
    for image in ("app", "sandbox", "sandbox-python-data"):
        tags = httpx.get(f"http://{registry}/v2/executioner/{image}/tags/list", timeout=10).json()
        assert tag in tags["tags"], tags
        index = httpx.get(
            f"http://{registry}/v2/executioner/{image}/manifests/{tag}",
            headers={"Accept": "application/vnd.oci.image.index.v1+json"},
            timeout=10,
        ).json()
        assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64"], index
    # Redis is an upstream image on a real cluster; this machine has only its local stand-in: push that too.
    redis = f"{registry}/executioner/redis:7.0-local"
    subprocess.run(
        ["buildah", "push", "--tls-verify=false", "docker.io/executioner/redis:7.0-local", f"docker://{redis}"],
        check=True,
        capture_output=True,
        timeout=300,
    )

    release = f"reg-{uuid.uuid4().hex[:6]}"
    namespace = kube.unique("reg-home")
    kube.kubectl(kubeconfig, "create", "namespace", namespace)
    try:
        installed = make(
            "chart-install",
            f"REGISTRY={registry}",
            f"TAG={tag}",
            f"CHART_RELEASE={release}",
            f"CHART_NAMESPACE={namespace}",
            # the local cluster's specifics, as explicit opt-ins: no cluster DNS, and Redis from the registry
            "CHART_ARGS=--set clusterDNS=false --set crds.enabled=false "
            f"--set redis.image.repository={registry}/executioner/redis --set redis.image.tag=7.0-local",
            kubeconfig=kubeconfig,
            timeout=900,
        )
        assert installed.returncode == 0, (
            f"chart-install failed:\n{installed.stdout[-3000:]}\n{installed.stderr[-3000:]}"
        )
        assert "values-local.yaml" not in installed.stdout
        pods = json.loads(kube.kubectl(kubeconfig, "get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
        images = {c["image"] for p in pods for c in p["status"]["containerStatuses"]}
        assert images == {f"{registry}/executioner/app:{tag}", redis}, images
        fullname = f"{release}-executioner"
        forward, port = kube.port_forward(kubeconfig, namespace, f"{fullname}-api", 8000)
        try:
            key = cluster_harness.kubectl_json(
                "get", "secret", f"{fullname}-api-keys", kubeconfig=kubeconfig, namespace=namespace
            )["data"]["api-keys"]
            headers = {"Authorization": f"Bearer {base64.b64decode(key).decode().split(',')[0]}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as api:
                kube.wait_until_healthy(api)

                def run(body):
                    doc = api.post("/v1/executions", params={"wait": 30}, json=body).json()
                    while doc["status"] in ("queued", "running"):
                        doc = api.get(f"/v1/executions/{doc['id']}", params={"wait": 30}).json()
                    return doc

                doc = run({"code": "print('from the registry')"})
                assert (doc["status"], doc["stdout"]) == ("succeeded", "from the registry\n"), doc
                data = run({"code": "import numpy; print(numpy.arange(3).sum())", "runtime": "python-data"})
                assert (data["status"], data["stdout"]) == ("succeeded", "3\n"), data
        finally:
            kube.stop_port_forward(forward)
        # the sandbox Jobs' pods ran the pushed sandbox images, one per runtime (their events name them)
        events = kube.kubectl(kubeconfig, "get", "events", "-n", f"{fullname}-sandbox", "-o", "json").stdout
        assert f"{registry}/executioner/sandbox:{tag}" in events
        assert f"{registry}/executioner/sandbox-python-data:{tag}" in events
    finally:
        subprocess.run(
            [helm, "uninstall", release, "-n", namespace, "--kubeconfig", kubeconfig, "--wait"],
            capture_output=True,
            timeout=300,
        )
        kube.delete_namespaces(kubeconfig, namespace)
