"""Proof that the test cluster is a real Kubernetes: each test would fail against a fake or a half-working cluster."""

from __future__ import annotations

import json
import subprocess

import pytest

from cluster import harness as h

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(420)]

TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def _probe_pod(name, image, expect, targets, within=25):
    return h.pod(
        name,
        h.restricted_pod_spec(
            image, ["python3", "/usr/local/bin/probe.py", "--expect", expect, "--within", str(within), *targets]
        ),
        labels={"role": "probe"},
    )


def _run_to_completion(kubeconfig, ns, manifest, timeout=120) -> str:
    """Create a pod, wait until it has terminated successfully, return its logs."""
    h.apply(manifest, kubeconfig, ns)
    name = manifest["metadata"]["name"]
    try:
        h.wait(kubeconfig, ns, f"pod/{name}", "jsonpath={.status.phase}=Succeeded", timeout=timeout)
    except subprocess.CalledProcessError:
        print(h.kubectl("describe", "pod", name, kubeconfig=kubeconfig, namespace=ns, check=False).stdout)
        raise
    return h.pod_logs(kubeconfig, ns, name)


def test_job_runs_and_logs_are_read_back(kubeconfig, namespace, probe_image):
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "hello"},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 600,
            "template": {
                "spec": h.restricted_pod_spec(
                    probe_image,
                    ["python3", "-c", "import platform; print('hello from job', 6 * 7, platform.python_version())"],
                )
            },
        },
    }
    h.apply(job, kubeconfig, namespace)
    h.wait(kubeconfig, namespace, "job/hello", "condition=Complete", timeout=120)
    out = h.kubectl("logs", "job/hello", kubeconfig=kubeconfig, namespace=namespace).stdout
    assert "hello from job 42 3." in out
    pods = h.kubectl_json("get", "pods", "-l", "job-name=hello", kubeconfig=kubeconfig, namespace=namespace)["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
    assert pods[0]["spec"]["nodeName"], "the scheduler bound the pod to a node"


def test_memory_limit_oomkills(kubeconfig, namespace, probe_image):
    hog = "b = bytearray(b'x') * (400 << 20); print('survived', len(b))"
    h.apply(
        h.pod("hog", h.restricted_pod_spec(probe_image, ["python3", "-c", hog], memory="128Mi")), kubeconfig, namespace
    )
    h.wait(kubeconfig, namespace, "pod/hog", "jsonpath={.status.phase}=Failed", timeout=120)
    st = h.kubectl_json("get", "pod", "hog", kubeconfig=kubeconfig, namespace=namespace)["status"]
    term = st["containerStatuses"][0]["state"]["terminated"]
    assert term["reason"] == "OOMKilled", term
    assert term["exitCode"] == 137, term


def test_networkpolicy_deny_all_is_enforced(kubeconfig, namespace, probe_image):
    kc, ns = kubeconfig, namespace
    server = h.restricted_pod_spec(
        probe_image, ["python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"], restart="Always"
    )
    server["containers"][0]["ports"] = [{"containerPort": 8080}]
    server["containers"][0]["workingDir"] = "/tmp"
    h.apply(h.pod("server", server, labels={"role": "server"}), kc, ns)
    h.wait(kc, ns, "pod/server", "condition=Ready", timeout=120)
    server_ip = h.kubectl_json("get", "pod", "server", kubeconfig=kc, namespace=ns)["status"]["podIP"]
    # a Service in front of it (kube-proxy ClusterIP -> pod on the same bridge)
    h.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "server"},
            "spec": {"selector": {"role": "server"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        kc,
        ns,
    )
    svc_ip = h.kubectl_json("get", "service", "server", kubeconfig=kc, namespace=ns)["spec"]["clusterIP"]
    node_ip = next(
        a["address"]
        for a in h.kubectl_json("get", "nodes", kubeconfig=kc)["items"][0]["status"]["addresses"]
        if a["type"] == "InternalIP"
    )
    eps = h.kubectl_json("get", "endpoints", "kubernetes", kubeconfig=kc, namespace="default")["subsets"][0]
    api = f"{eps['addresses'][0]['ip']}:{eps['ports'][0]['port']}"
    api_svc = h.kubectl_json("get", "service", "kubernetes", kubeconfig=kc, namespace="default")["spec"]["clusterIP"]
    targets = {
        "pod": f"{server_ip}:8080",
        "service": f"{svc_ip}:80",
        "api": api,
        "api-service": f"{api_svc}:443",
        "host": f"{node_ip}:10250",
    }

    # kubectl exec works (the API server may use the kubelet API) and the server answers locally
    out = h.kubectl(
        "exec",
        "server",
        "--",
        "python3",
        "-c",
        "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8080/').status)",
        kubeconfig=kc,
        namespace=ns,
    ).stdout
    assert out.strip() == "200"

    # 1. without a policy every target answers: pod networking, the API server and the host are reachable
    before = json.loads(_run_to_completion(kc, ns, _probe_pod("probe-open", probe_image, "open", targets.values())))
    assert all(v == "open" for v in before.values()), before

    # 2. with a deny-all policy the same probe from the same namespace reaches nothing
    h.apply(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny-all"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        kc,
        ns,
    )
    after = json.loads(_run_to_completion(kc, ns, _probe_pod("probe-denied", probe_image, "closed", targets.values())))
    opened = {k: after[t] for k, t in targets.items() if after[t] == "open"}
    assert not opened, f"reachable despite deny-all: {opened} (all: {after})"

    # 3. and removing the policy restores reachability (the block was the policy, not broken networking)
    h.kubectl("delete", "networkpolicy", "deny-all", kubeconfig=kc, namespace=ns)
    again = json.loads(_run_to_completion(kc, ns, _probe_pod("probe-reopen", probe_image, "open", [targets["pod"]])))
    assert again[targets["pod"]] == "open", again


def test_automount_false_has_no_token(kubeconfig, namespace, probe_image):
    check = f"import os; print(os.path.exists({TOKEN!r}))"
    without = h.pod("no-token", h.restricted_pod_spec(probe_image, ["python3", "-c", check], automount=False))
    with_token = h.pod("with-token", h.restricted_pod_spec(probe_image, ["python3", "-c", check], automount=True))
    assert _run_to_completion(kubeconfig, namespace, without).strip() == "False"
    # control: the same pod with the default automount does get a token, so the check above can fail
    assert _run_to_completion(kubeconfig, namespace, with_token).strip() == "True"
    spec = h.kubectl_json("get", "pod", "no-token", kubeconfig=kubeconfig, namespace=namespace)["spec"]
    assert not any(v.get("projected") for v in spec.get("volumes", [])), spec.get("volumes")


def test_pod_security_restricted_is_enforced(kubeconfig, namespace, probe_image):
    bad = h.pod(
        "privileged",
        {
            "containers": [
                {"name": "c", "image": probe_image, "command": ["true"], "securityContext": {"privileged": True}}
            ]
        },
    )
    p = h.kubectl("apply", "-f", "-", kubeconfig=kubeconfig, namespace=namespace, check=False, input=json.dumps(bad))
    assert p.returncode != 0 and "violates PodSecurity" in p.stderr, p.stderr


def test_limitranger_and_resourcequota_admission(kubeconfig, namespace, probe_image):
    kc, ns = kubeconfig, namespace
    h.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": {"name": "defaults"},
                "spec": {
                    "limits": [
                        {
                            "type": "Container",
                            "default": {"memory": "96Mi", "cpu": "200m"},
                            "defaultRequest": {"memory": "32Mi", "cpu": "10m"},
                        }
                    ]
                },
            },
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "one-pod"},
                "spec": {"hard": {"pods": "1"}},
            },
        ],
        kc,
        ns,
    )
    h.wait(kc, ns, "resourcequota/one-pod", "jsonpath={.status.hard.pods}=1", timeout=60)
    spec = h.restricted_pod_spec(probe_image, ["python3", "-c", "print(1)"])
    del spec["containers"][0]["resources"]
    h.apply(h.pod("first", spec), kc, ns)
    got = h.kubectl_json("get", "pod", "first", kubeconfig=kc, namespace=ns)["spec"]["containers"][0]["resources"]
    assert got["limits"]["memory"] == "96Mi", got  # LimitRanger filled in the namespace default
    p = h.kubectl("apply", "-f", "-", kubeconfig=kc, namespace=ns, check=False, input=json.dumps(h.pod("second", spec)))
    assert p.returncode != 0 and "exceeded quota" in p.stderr, p.stderr
