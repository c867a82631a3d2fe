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

They are registered for every test folder by tests/conftest.py (tests/ is on sys.path, so this module
and the harness import as `cluster.fixtures` and `cluster.harness`).
"""

from __future__ import annotations

import os

import pytest

from cluster import harness


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
