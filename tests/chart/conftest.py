"""Fixtures for the chart tests: the pinned helm, a `render` helper (helm template -> list of dicts) and
`chart_images` (the chart's images loaded into the cluster). The real-cluster fixtures (kubeconfig, namespace,
cluster_harness) come from tests/conftest.py."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "executioner"
LOCAL_VALUES = REPO / "hack" / "chart" / "values-local.yaml"
APP_VERSION = re.search(r'^appVersion: "?([^"\n]+)"?', (CHART / "Chart.yaml").read_text(), re.M).group(1)


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that rejects duplicate mapping keys (a template bug PyYAML would silently hide)."""


def _no_duplicates(loader, node, deep=False):
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {duplicates}", node.start_mark)
    return loader.construct_mapping(node, deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


@pytest.fixture(scope="session")
def helm() -> str:
    p = subprocess.run([str(REPO / "hack" / "chart" / "helm.sh")], capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        pytest.fail(f"no helm: {p.stderr[-2000:]}", pytrace=False)
    return p.stdout.strip().splitlines()[-1]


class Renderer:
    def __init__(self, helm: str):
        self.helm = helm

    def run(
        self, *args: str, values: dict | None = None, release="executioner", namespace="executioner", check=True
    ) -> subprocess.CompletedProcess:
        cmd = [self.helm, "template", release, str(CHART), "--namespace", namespace, *args]
        text = yaml.safe_dump(values) if values else None
        if text:
            cmd += ["-f", "-"]
        p = subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"helm template failed: {p.stderr}")
        return p

    def __call__(self, *args: str, values: dict | None = None, **kw) -> list[dict]:
        out = self.run(*args, values=values, **kw).stdout
        return [d for d in yaml.load_all(out, Loader=UniqueKeyLoader) if d]

    @staticmethod
    def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
        return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]

    @staticmethod
    def pod_specs(docs: list[dict]) -> dict[str, dict]:
        """Every pod spec a render produces (workloads' templates and bare pods), by "<Kind>/<name>"."""
        specs = {}
        for d in docs:
            if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                specs[f"{d['kind']}/{d['metadata']['name']}"] = d["spec"]["template"]["spec"]
            elif d["kind"] == "Pod":
                specs[f"Pod/{d['metadata']['name']}"] = d["spec"]
        return specs


@pytest.fixture(scope="session")
def render(helm) -> Renderer:
    return Renderer(helm)


@pytest.fixture(scope="session")
def chart_images(kubeconfig, cluster_harness) -> None:
    """The app, sandbox (one per runtime) and Redis images of an install with hack/chart/values-local.yaml, built and loaded by
    hack/chart/image.sh (which skips an image already loaded from the same inputs) on the local cluster; on another
    cluster they must have been loaded already."""
    if not cluster_harness.is_local_cluster(kubeconfig):
        return
    if not (REPO / "frontend" / "dist" / "index.html").exists():
        subprocess.run(["make", "frontend"], cwd=REPO, check=True, timeout=900)
    for kind, ref in (
        ("app", f"executioner/app:{APP_VERSION}"),
        ("sandbox", f"executioner/sandbox:{APP_VERSION}"),
        ("sandbox-python-data", f"executioner/sandbox-python-data:{APP_VERSION}"),
        ("redis", "executioner/redis:7.0-local"),
    ):
        p = subprocess.run(
            [str(REPO / "hack" / "chart" / "image.sh"), kind, ref],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert p.returncode == 0, f"building {ref} failed:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}"
