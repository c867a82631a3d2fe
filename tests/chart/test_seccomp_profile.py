"""The opt-in seccomp profile DaemonSet (sandbox.seccompProfile): rendered, then installed on the real cluster,
where a runc sandbox pod that asks for the profile finds io_uring refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from executioner.kube import kubernetes_api_client
from executioner.models import Execution, Limits, Status
from executioner.settings import Settings
from executioner.worker.backends.kubernetes import KubernetesBackend
from helpers import kube

CHART = Path(__file__).resolve().parents[2] / "charts" / "executioner"
APP_VERSION = re.search(r'^appVersion: "?([^"\n]+)"?', (CHART / "Chart.yaml").read_text(), re.M).group(1)
ENABLED = {"sandbox": {"seccompProfile": {"enabled": True}}}
PROFILE_NAME = "executioner/executioner-executioner.json"  # <release namespace>-<fullname> of the default render


def test_the_profile_is_installed_and_asked_for_only_when_enabled(render):
    assert not render.find(render(), "DaemonSet")
    docs = render(values=ENABLED)
    profile = json.loads(render.find(docs, "ConfigMap", "executioner-seccomp-profile")[0]["data"]["profile.json"])
    assert profile == json.loads((CHART / "files" / "sandbox-seccomp.json").read_text())
    allowed = {name for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for name in rule["names"]}
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert not {"io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "keyctl", "unshare"} & allowed
    for name, spec in render.pod_specs(docs).items():
        env = {e["name"]: e.get("value") for c in spec["containers"] for e in c.get("env", [])}
        if name.endswith(("-worker", "-operator")):
            assert env["EXECUTIONER_SANDBOX_SECCOMP_PROFILE"] == PROFILE_NAME, name


def test_the_installer_holds_nothing_it_does_not_need(render):
    daemonset = render.find(render(values=ENABLED), "DaemonSet")[0]
    spec = daemonset["spec"]["template"]["spec"]
    # the copy is an init container (the pod is Ready only once the profile is in place); the other one only waits
    (installer,) = spec["initContainers"]
    (holder,) = spec["containers"]
    assert spec["automountServiceAccountToken"] is False
    for container in (installer, holder):
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "volumeMounts" not in holder
    host_paths = [v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v]
    assert host_paths == ["/var/lib/kubelet/seccomp"]
    assert PROFILE_NAME in installer["command"][-1]


@pytest.mark.cluster
def test_the_daemonset_installs_a_profile_that_refuses_io_uring(render, kubeconfig, kubernetes_stack, chart_images):
    local = kube.kubectl(kubeconfig, "get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").stdout
    root_dir = "/var/lib/executioner-cluster/kubelet/root" if local == "executioner-node" else "/var/lib/kubelet"
    namespace = kube.unique("exr-seccomp")
    values = {
        "sandbox": {"seccompProfile": {"enabled": True, "kubeletRootDir": root_dir}},
        "image": {"pullPolicy": "IfNotPresent", "tag": APP_VERSION},
    }
    docs = render("--show-only", "templates/seccomp-profile.yaml", values=values, namespace=namespace)
    profile_name = f"executioner/{namespace}-executioner.json"
    kube.kubectl(kubeconfig, "create", "namespace", namespace)
    try:
        # the installer is root with a hostPath: its namespace must allow that (never the sandbox namespace)
        kube.kubectl(kubeconfig, "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=privileged")
        kube.kubectl(kubeconfig, "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))
        kube.kubectl(
            kubeconfig, "rollout", "status", "-n", namespace, "daemonset/executioner-seccomp-profile", "--timeout=120s"
        )
        backend = KubernetesBackend(
            Settings(
                sandbox_namespace=kubernetes_stack.namespace,
                sandbox_image=kubernetes_stack.env["EXECUTIONER_SANDBOX_IMAGE"],
                sandbox_seccomp_profile=profile_name,
            ),
            kubernetes_api_client(kubernetes_stack.env["KUBECONFIG"]),
        )
        job = Execution.new(
            code=(
                "import ctypes, errno\n"
                "libc = ctypes.CDLL(None, use_errno=True)\n"
                "print(libc.syscall(425, 1, ctypes.create_string_buffer(120)), errno.errorcode[ctypes.get_errno()])\n"
            ),
            limits=Limits(timeout_seconds=10, memory_mb=128),
            backend="kubernetes",
            status=Status.running,
        )
        try:
            outcome = backend.run(job)
        finally:
            backend.cleanup(job.id)
        assert (outcome.status, outcome.stdout) == (Status.succeeded, "-1 EPERM\n"), outcome
    finally:
        kube.delete_namespaces(kubeconfig, namespace)
        if local == "executioner-node":  # the test cluster's node is this machine: leave no profile behind
            Path(root_dir, "seccomp", profile_name).unlink(missing_ok=True)
