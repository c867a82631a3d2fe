"""The chart's render accepted by a real API server (kubectl apply --dry-run=server): schemas, admission, and Pod
Security "restricted" enforced on every pod the chart makes."""

from __future__ import annotations

import copy
import uuid

import pytest
import yaml


@pytest.mark.cluster
def test_server_side_dry_run(render, kubeconfig, namespace, cluster_harness):
    kubectl = cluster_harness.kubectl
    sandbox = cluster_harness.make_namespace(kubeconfig, prefix="t-chart-sandbox")
    try:
        release = f"dry-{uuid.uuid4().hex[:6]}"
        # objects inside a namespace that a dry run would only pretend to create must go to real namespaces;
        # the Namespace object itself is dry-run on its own (under a fresh name)
        docs = render(
            "--include-crds",
            release=release,
            namespace=namespace,
            values={"sandbox": {"namespace": sandbox, "createNamespace": False}},
        )
        [ns] = [d for d in render(values={"sandbox": {"namespace": f"{sandbox}-x"}}) if d["kind"] == "Namespace"]
        objects = [ns] + [d for d in docs if d["kind"] != "Pod"]  # bare pods need their ServiceAccount to exist
        p = kubectl(
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            kubeconfig=kubeconfig,
            input=yaml.safe_dump_all(objects),
            check=False,
        )
        assert p.returncode == 0, p.stderr
        applied = [line for line in p.stdout.splitlines() if "(server dry run)" in line]
        assert len(applied) == len(objects), p.stdout
        # Pod Security applies to pods, not to Deployments: run every pod template through admission as a Pod in
        # the restricted namespace
        pods = []
        claim_templates = {
            f"StatefulSet/{d['metadata']['name']}": d["spec"].get("volumeClaimTemplates", [])
            for d in docs
            if d["kind"] == "StatefulSet"
        }
        for key, spec in render.pod_specs(docs).items():
            spec = dict(copy.deepcopy(spec), serviceAccountName="default")
            # the StatefulSet controller gives its pods a volume for each claim template (claim <template>-<pod>)
            for claim in claim_templates.get(key, []):
                name = claim["metadata"]["name"]
                spec["volumes"] = [v for v in spec.get("volumes", []) if v["name"] != name] + [
                    {"name": name, "persistentVolumeClaim": {"claimName": f"{name}-{key.split('/')[1]}-0"}}
                ]
            pods.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": f"dry-{key.split('/')[1]}"[:63].rstrip("-"), "namespace": namespace},
                    "spec": spec,
                }
            )
        p = kubectl(
            "apply", "--dry-run=server", "-f", "-", kubeconfig=kubeconfig, input=yaml.safe_dump_all(pods), check=False
        )
        assert p.returncode == 0, p.stderr
        assert "violate" not in p.stderr, p.stderr
        # api, worker, operator, Redis, the helm test pod and the uninstall hook's Job
        assert len([line for line in p.stdout.splitlines() if "(server dry run)" in line]) == len(pods) == 6
    finally:
        cluster_harness.delete_namespace(kubeconfig, sandbox)
