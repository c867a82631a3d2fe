"""The operator under test: kopf.testing.KopfRunner in this process, with the operator's own RBAC."""

from __future__ import annotations

import pytest

from helpers import kube
from helpers.operator import operator_env, operator_running

CRD = kube.MANIFESTS / "crd.yaml"


@pytest.fixture(scope="session")
def crd(kubeconfig):
    kube.kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kube.kubectl(
        kubeconfig, "wait", "--for=condition=Established", "crd/executionrequests.executioner.dev", "--timeout=60s"
    )


@pytest.fixture(scope="session")
def operator_kubeconfig(kubeconfig, kubernetes_stack, tmp_path_factory):
    home = kube.unique("exr-operator")
    path = tmp_path_factory.mktemp("operator") / "operator.kubeconfig"
    yield kube.component_kubeconfig(kubeconfig, "operator", kubernetes_stack.namespace, home, path)
    kube.delete_namespaces(kubeconfig, home)


@pytest.fixture
def operator(crd, kubernetes_stack, operator_kubeconfig):
    with operator_running(operator_env(kubernetes_stack, operator_kubeconfig)) as runner:
        yield runner


@pytest.fixture
def user_namespace(kubeconfig):
    name = kube.unique("exr-user")
    kube.kubectl(kubeconfig, "create", "namespace", name)
    yield name
    kube.delete_namespaces(kubeconfig, name)
