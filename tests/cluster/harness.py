"""Reusable helpers for tests that need a real Kubernetes cluster (plain functions, no pytest magic).

    kubectl_bin() / helm_bin() / tool_path(tool) -> str   pinned binaries from ~/.cache/executioner
    ensure_cluster() -> str            kubeconfig path: $KUBECONFIG if it points at a reachable cluster (kind or
                                       any other), else the local cluster started by hack/cluster/up.sh
    is_local_cluster(kubeconfig)       True when kubeconfig is the one hack/cluster/up.sh wrote
    kubectl(*args, kubeconfig=, namespace=, input=, check=True, timeout=120) -> CompletedProcess (text)
    kubectl_json(*args, ...) -> dict   kubectl ... -o json, parsed
    apply(manifest, kubeconfig=, namespace=)       manifest: dict, list of dicts or YAML text
    make_namespace(kubeconfig, prefix="t", labels=None, pod_security="restricted") -> name
    delete_namespace(kubeconfig, name, wait=False)
    wait(kubeconfig, namespace, resource, condition, timeout=120)  -> kubectl wait --for=<condition>
    pod_logs(kubeconfig, namespace, pod_or_job) -> str
    build_image(context, dockerfile, name) -> str  build with buildah and load into the local cluster
    probe_image(kubeconfig) -> str     the minimal python3 image of tests/cluster/testdata (built once per session)
    restricted_pod_spec(...)           a pod spec that passes the "restricted" Pod Security level
    api_client(kubeconfig)             kubernetes.client.ApiClient for the python client

Environment: KUBECONFIG (use that cluster), CI=true (a cluster that cannot start is an error, never a skip),
EXECUTIONER_LOCAL_CLUSTER=1 (ignore KUBECONFIG and use the local cluster).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
HACK = REPO / "hack" / "cluster"
TESTDATA = Path(__file__).resolve().parent / "testdata"
STATE = Path(os.environ.get("EXECUTIONER_CLUSTER_STATE", "/var/lib/executioner-cluster"))
LOCAL_KUBECONFIG = STATE / "kubeconfig"
PROBE_IMAGE = "docker.io/executioner/cluster-probe:dev"


class ClusterUnavailable(RuntimeError):
    """The cluster could not be found or started."""


def _versions() -> dict:
    env = {}
    for line in (HACK / "versions.env").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    return env


def kubectl_bin() -> str:
    """The pinned kubectl from the cluster build cache, else a kubectl on PATH."""
    cache = Path(os.environ.get("EXECUTIONER_CACHE", Path.home() / ".cache" / "executioner"))
    pinned = cache / f"kubernetes-{_versions()['KUBE_VERSION']}" / "bin" / "kubectl"
    if pinned.exists():
        return str(pinned)
    found = shutil.which("kubectl")
    if not found:
        raise ClusterUnavailable("no kubectl: run `make cluster-tools` or install kubectl")
    return found


def tool_path(tool: str) -> str:
    """Path of a pinned cluster tool (kubectl, helm, kube-apiserver, ...), built and cached on first use."""
    p = subprocess.run(
        [str(HACK / "tool-path.sh"), tool],
        capture_output=True,
        text=True,
        timeout=3600,
        env=dict(os.environ, PATH=f"/usr/local/go/bin:{os.environ.get('PATH', '')}"),
    )
    if p.returncode != 0:
        raise ClusterUnavailable(f"cannot get {tool}: {p.stderr[-2000:]}")
    return p.stdout.strip()


def helm_bin() -> str:
    """The pinned helm (v3) from the cluster build cache, else a helm on PATH."""
    try:
        return tool_path("helm")
    except ClusterUnavailable:
        found = shutil.which("helm")
        if not found:
            raise
        return found


def kubectl(*args, kubeconfig=None, namespace=None, input=None, check=True, timeout=120):
    cmd = [kubectl_bin()]
    if kubeconfig:
        cmd += ["--kubeconfig", str(kubeconfig)]
    if namespace:
        cmd += ["-n", namespace]
    cmd += [str(a) for a in args]
    p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise subprocess.CalledProcessError(p.returncode, cmd, p.stdout, p.stderr)
    return p


def kubectl_json(*args, **kw) -> dict:
    return json.loads(kubectl(*args, "-o", "json", **kw).stdout)


def _reachable(kubeconfig) -> bool:
    try:
        return kubectl("get", "--raw", "/readyz", kubeconfig=kubeconfig, check=False, timeout=20).returncode == 0
    except (subprocess.TimeoutExpired, ClusterUnavailable):
        return False


_cached_kubeconfig: str | None = None


def ensure_cluster() -> str:
    """Return a kubeconfig path for a reachable cluster, starting the local one when needed.

    KUBECONFIG wins when it is set and reachable (unless EXECUTIONER_LOCAL_CLUSTER=1); when it is set but not
    reachable that is an error (the user asked for that cluster). Otherwise hack/cluster/up.sh starts (or finds
    running) the local cluster; its last output line is KUBECONFIG=<path>.
    """
    global _cached_kubeconfig
    if _cached_kubeconfig:
        return _cached_kubeconfig
    user = os.environ.get("KUBECONFIG")
    if user and os.environ.get("EXECUTIONER_LOCAL_CLUSTER") != "1" and Path(user).resolve() != LOCAL_KUBECONFIG:
        if not _reachable(user):
            raise ClusterUnavailable(f"KUBECONFIG={user} is set but its cluster does not answer /readyz")
        _cached_kubeconfig = user
        return user
    if LOCAL_KUBECONFIG.exists() and _reachable(LOCAL_KUBECONFIG):
        # fast path; up.sh is idempotent but checking the API is cheaper
        status = subprocess.run([str(HACK / "status.sh")], capture_output=True, text=True)
        if status.returncode == 0:
            _cached_kubeconfig = str(LOCAL_KUBECONFIG)
            return _cached_kubeconfig
    env = dict(os.environ, PATH=f"/usr/local/go/bin:{os.environ.get('PATH', '')}")
    p = subprocess.run([str(HACK / "up.sh")], capture_output=True, text=True, env=env, timeout=3600)
    lines = [ln for ln in p.stdout.strip().splitlines() if ln.strip()]
    if p.returncode != 0 or not lines or not lines[-1].startswith("KUBECONFIG="):
        raise ClusterUnavailable(
            f"hack/cluster/up.sh failed (exit {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
        )
    _cached_kubeconfig = lines[-1].split("=", 1)[1]
    return _cached_kubeconfig


def is_local_cluster(kubeconfig) -> bool:
    return Path(kubeconfig).resolve() == LOCAL_KUBECONFIG.resolve()


def api_client(kubeconfig):
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kubeconfig))


def apply(manifest, kubeconfig=None, namespace=None):
    if isinstance(manifest, str):
        text = manifest
    elif isinstance(manifest, list):
        text = yaml.safe_dump_all(manifest)
    else:
        text = yaml.safe_dump(manifest)
    return kubectl("apply", "-f", "-", kubeconfig=kubeconfig, namespace=namespace, input=text)


def make_namespace(kubeconfig, prefix="t", labels=None, pod_security="restricted") -> str:
    """Create a fresh namespace (name prefix-<random>) that enforces the given Pod Security level (None: no label)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    lab = {"app.kubernetes.io/part-of": "executioner-tests"}
    if pod_security:
        lab["pod-security.kubernetes.io/enforce"] = pod_security
    lab.update(labels or {})
    apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": lab}}, kubeconfig)
    # the ServiceAccount admission needs the namespace's default service account before pods can be created
    wait(kubeconfig, None, f"namespace/{name}", "jsonpath={.status.phase}=Active", timeout=30)
    kubectl(
        "wait",
        "--for=create",
        "serviceaccount/default",
        "--timeout=60s",
        kubeconfig=kubeconfig,
        namespace=name,
        timeout=90,
    )
    return name


def delete_namespace(kubeconfig, name, wait=False):
    kubectl(
        "delete",
        "namespace",
        name,
        "--ignore-not-found",
        f"--wait={'true' if wait else 'false'}",
        kubeconfig=kubeconfig,
        check=False,
        timeout=300,
    )


def wait(kubeconfig, namespace, resource, condition, timeout=120):
    """kubectl wait --for=<condition> <resource>; raises CalledProcessError (with stderr) on timeout."""
    return kubectl(
        "wait",
        f"--for={condition}",
        resource,
        f"--timeout={int(timeout)}s",
        kubeconfig=kubeconfig,
        namespace=namespace,
        timeout=timeout + 30,
    )


def pod_logs(kubeconfig, namespace, pod) -> str:
    return kubectl("logs", pod, kubeconfig=kubeconfig, namespace=namespace).stdout


def build_image(context, dockerfile, name) -> str:
    """Build an image with buildah and load it into the local cluster's containerd; returns the full name."""
    p = subprocess.run(
        [str(HACK / "build-image.sh"), str(context), str(dockerfile), name],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if p.returncode != 0:
        raise RuntimeError(f"build-image.sh failed:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    return p.stdout.strip().splitlines()[-1]


def probe_image(kubeconfig) -> str:
    """The proof tests' python3 image: built and loaded for the local cluster; on another cluster it must have
    been loaded already (make kind-up does it)."""
    if is_local_cluster(kubeconfig):
        return build_image(TESTDATA, TESTDATA / "Dockerfile", PROBE_IMAGE)
    return PROBE_IMAGE


def restricted_pod_spec(image, command, *, memory="64Mi", restart="Never", automount=False, **extra) -> dict:
    """A single-container pod spec that passes Pod Security "restricted"."""
    spec = {
        "restartPolicy": restart,
        "automountServiceAccountToken": automount,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 1,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "main",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": list(command),
                "resources": {
                    "limits": {"memory": memory, "cpu": "500m"},
                    "requests": {"memory": memory, "cpu": "10m"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }
    spec.update(extra)
    return spec


def pod(name, spec, labels=None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": spec}
