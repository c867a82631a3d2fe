"""manifests/ is the chart's default render, split the way `make up` needs it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_manifests_match_the_chart(helm):
    p = subprocess.run(
        [str(REPO / "hack" / "chart" / "render-manifests.sh"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]


def test_manifests_split_for_make_up():
    def kinds(name):
        return [
            f"{d['kind']}/{d['metadata']['name']}"
            for d in yaml.safe_load_all((REPO / "manifests" / name).read_text())
            if d
        ]

    assert kinds("crd.yaml") == ["CustomResourceDefinition/executionrequests.executioner.dev"]
    assert sorted(kinds("sandbox-namespace.yaml")) == [
        "LimitRange/executioner-sandbox",
        "Namespace/executioner-sandbox",
        "NetworkPolicy/executioner-sandbox-deny-all",
        "ResourceQuota/executioner-sandbox",
        "ServiceAccount/executioner-sandbox",
    ]
    assert {k.split("/")[0] for k in kinds("rbac.yaml")} == {
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    }
    assert {k for k in kinds("deployments.yaml") if k.startswith("Deployment/")} == {
        "Deployment/executioner-api",
        "Deployment/executioner-worker",
        "Deployment/executioner-operator",
    }
    everything = "".join(
        (REPO / "manifests" / n).read_text()
        for n in ("crd.yaml", "sandbox-namespace.yaml", "rbac.yaml", "deployments.yaml")
    )
    assert "kind: Secret" not in everything and "helm.sh/hook" not in everything
