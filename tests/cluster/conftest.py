"""pytest fixtures for tests that need a real Kubernetes cluster.

Stable fixture API (other test folders reuse it):

    kubeconfig   (session)  str: path of a kubeconfig for a reachable cluster. Uses $KUBECONFIG when it points at
                            a cluster (kind or any other); otherwise starts the local cluster (hack/cluster/up.sh,
                            the same as `make cluster-up`) and leaves it running for the next session
                            (`make cluster-down` stops it). Also exported as os.environ["KUBECONFIG"].
                            A cluster that cannot start fails the test (never a skip); without a cluster
                            run `make test-local`, which leaves the cluster tests out.
    namespace    (function) str: a fresh namespace (Pod Security "restricted" enforced, label
                            app.kubernetes.io/part-of=executioner-tests), deleted after the test.
    cluster_harness (session) the tests/cluster/harness.py module (kubectl(), apply(), wait(), pod_logs(),
                            build_image(), probe_image(), restricted_pod_spec(), ...).
    probe_image  (session)  str: full name of the minimal python3 image in tests/cluster/testdata, loaded into
                            the cluster.

To use these in another test folder (pytest runs with --import-mode=importlib and there is no tests/__init__.py),
put this in e.g. tests/operator/conftest.py:

    import importlib.util, pathlib, sys
    _p = pathlib.Path(__file__).resolve().parents[1] / "cluster" / "conftest.py"
    _s = importlib.util.spec_from_file_location("executioner_cluster_conftest", _p)
    _m = sys.modules.get(_s.name) or importlib.util.module_from_spec(_s)
    if _s.name not in sys.modules:
        sys.modules[_s.name] = _m; _s.loader.exec_module(_m)
    kubeconfig, namespace, cluster_harness, probe_image = _m.kubeconfig, _m.namespace, _m.cluster_harness, _m.probe_image

The harness module is cached in sys.modules, so the cluster is looked up or started once per session.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest


def _load_harness():
    name = "executioner_cluster_harness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().with_name("harness.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


harness = _load_harness()


@pytest.fixture(scope="session")
def cluster_harness():
    return harness


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    try:
        path = harness.ensure_cluster()
    except Exception as e:  # noqa: BLE001 - any failure to get a cluster is reported the same way
        # Never a skip: a machine that cannot run the cluster runs `make test-local` instead.
        pytest.fail(f"no Kubernetes cluster: {e}", pytrace=False)
    os.environ["KUBECONFIG"] = path
    return path


@pytest.fixture
def namespace(kubeconfig, request) -> str:
    prefix = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:30].strip("-")
    name = harness.make_namespace(kubeconfig, prefix=prefix)
    yield name
    harness.delete_namespace(kubeconfig, name, wait=False)


@pytest.fixture(scope="session")
def probe_image(kubeconfig) -> str:
    return harness.probe_image(kubeconfig)
