"""Shared fixtures: a real redis-server, a real Celery worker, the real API.

Fixtures
- redis_url (session): a private redis-server.
- stack_env (session): environment for components of the local stack.
- stack (session): worker + API on the local backend; `stack.url` is the API.
- stack_url (session): the same URL, for the browser tests.
- cold_stack (session): the local stack with no warm sandboxes (EXECUTIONER_LOCAL_POOL_SIZE=0).
- api (function): an httpx.Client on the stack's API.
- store (function): an ExecutionStore on the stack's Redis.
- kubernetes_stack (session): worker + API on the Kubernetes backend, on the real
  cluster, in a fresh sandbox namespace made from manifests/, the worker holding only
  the RBAC manifests/rbac.yaml grants it.
- gvisor_stack (session): the same with every sandbox pod under gVisor (RuntimeClass `gvisor`).
- run_code (function, parametrised over BACKENDS): run a program through the whole
  system (API, Redis, worker, sandbox) on each backend and return its document.
  A backend joins the shared behaviour and escape suites by adding its stack
  fixture (named "<backend>_stack") to BACKENDS.
- @pytest.mark.every_runtime: run a run_code test in every runtime, on the backends
  RUNTIME_BACKENDS names for it (`runtime` is the default runtime otherwise).
- prepared_runtimes (session): `executioner prepare-runtimes` for the local stacks
  (cached by lock file: seconds after the first time); fails loudly when it cannot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cluster.fixtures import cluster_harness, kubeconfig, namespace, probe_image  # noqa: F401 - for every suite
from executioner.store import ExecutionStore
from helpers import kube
from helpers.stack import REPO, run_program, start_api, start_pool_refiller, start_redis, start_worker, stop


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = REPO / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url, process = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    stop(process)


@pytest.fixture(scope="session")
def stack_env(redis_url) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
    env.update(
        EXECUTIONER_REDIS_URL=redis_url,
        EXECUTIONER_BACKEND="local",
        EXECUTIONER_WORKER_CONCURRENCY="4",
        EXECUTIONER_LEASE_SECONDS="3",
        EXECUTIONER_SWEEP_INTERVAL_SECONDS="1",
        EXECUTIONER_GRACE_SECONDS="5",
    )
    return env


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    logs: Path
    backend: str = "local"
    kubeconfig: str | None = None
    namespace: str | None = None
    runtime_class: str | None = None


@pytest.fixture(scope="session")
def prepared_runtimes() -> None:
    """The local runtimes' packages, installed where the local stacks' workers look (as `make runtimes` does)."""
    result = subprocess.run(
        [sys.executable, "-P", "-m", "executioner.cli", "prepare-runtimes"],
        env={k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"executioner prepare-runtimes failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="session")
def stack(stack_env, prepared_runtimes, tmp_path_factory):
    logs = tmp_path_factory.mktemp("stack-logs")
    worker = start_worker(stack_env, logs / "worker.log")
    url, api_process = start_api(stack_env, logs / "api.log")
    yield Stack(url=url, env=stack_env, logs=logs)
    stop(api_process)
    stop(worker)


@pytest.fixture(scope="session")
def cold_stack(prepared_runtimes, tmp_path_factory):
    """The local stack without warm sandboxes: every execution starts its own (its own Redis, so no other worker
    takes its executions)."""
    logs = tmp_path_factory.mktemp("cold-stack")
    redis_url, redis_process = start_redis(logs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
    env.update(
        EXECUTIONER_REDIS_URL=redis_url,
        EXECUTIONER_BACKEND="local",
        EXECUTIONER_LOCAL_POOL_SIZE="0",
        EXECUTIONER_WORKER_CONCURRENCY="4",
        EXECUTIONER_LEASE_SECONDS="3",
        EXECUTIONER_SWEEP_INTERVAL_SECONDS="1",
        EXECUTIONER_GRACE_SECONDS="5",
    )
    worker = start_worker(env, logs / "worker.log", name="cold")
    url, api_process = start_api(env, logs / "api.log")
    yield Stack(url=url, env=env, logs=logs)
    stop(api_process)
    stop(worker)
    stop(redis_process)


@pytest.fixture(scope="session")
def stack_url(stack) -> str:
    return stack.url


@pytest.fixture
def api(stack):
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        yield client


@pytest.fixture
def store(redis_url):
    store = ExecutionStore.from_url(redis_url, 3600)
    yield store
    store.redis.close()


def load_image(kind: str, name: str) -> str:
    """An image built with buildah and loaded into the cluster by hack/chart/image.sh, which skips one already loaded
    from the same inputs (a runtime's wheels are cached by its lock's hash)."""
    p = subprocess.run(
        [str(REPO / "hack" / "chart" / "image.sh"), kind, name], cwd=REPO, capture_output=True, text=True, timeout=1800
    )
    assert p.returncode == 0, f"building {name} failed:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}"
    return p.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def sandbox_image(cluster_harness) -> str:  # noqa: F811
    """The python runtime's image, built from sandbox-image/Dockerfile, loaded into the cluster."""
    return load_image("sandbox", "executioner/sandbox:0.1.0")


@pytest.fixture(scope="session")
def runtime_images(cluster_harness) -> dict[str, str]:  # noqa: F811
    """The other runtimes' images (sandbox-image/Dockerfile.<runtime>), loaded into the cluster: EXECUTIONER_RUNTIME_IMAGES."""
    return {"python-data": load_image("sandbox-python-data", "executioner/sandbox-python-data:0.1.0")}


# The kubernetes stack keeps a warm pool (so the shared suites run on warm pods); the gvisor stack starts every
# sandbox cold.
STACK_POOL_SIZES = {"python": 3}


@pytest.fixture(scope="session")
def kubernetes_stack(kubeconfig, sandbox_image, runtime_images, tmp_path_factory):  # noqa: F811
    yield from run_kubernetes_stack(
        kubeconfig,
        sandbox_image,
        tmp_path_factory.mktemp("kubernetes-stack"),
        runtime_images,
        EXECUTIONER_KUBERNETES_POOL_SIZES=json.dumps(STACK_POOL_SIZES),
    )


@pytest.fixture(scope="session")
def gvisor_stack(kubeconfig, sandbox_image, runtime_images, tmp_path_factory):  # noqa: F811
    """The Kubernetes stack with every sandbox pod under gVisor (the test cluster's RuntimeClass `gvisor`)."""
    yield from run_kubernetes_stack(
        kubeconfig,
        sandbox_image,
        tmp_path_factory.mktemp("gvisor-stack"),
        runtime_images,
        EXECUTIONER_RUNTIME_CLASS_NAME="gvisor",
    )


def run_kubernetes_stack(
    kubeconfig: str,  # noqa: F811
    sandbox_image: str,
    logs: Path,
    runtime_images: dict[str, str],
    **settings: str,
) -> Iterator[Stack]:
    """Worker + API on the Kubernetes backend in fresh namespaces, with extra EXECUTIONER_* settings."""
    sandbox_namespace, home_namespace = kube.unique("exr-sandbox"), kube.unique("exr-home")
    kube.create_sandbox_namespace(kubeconfig, sandbox_namespace)
    worker_kubeconfig = kube.component_kubeconfig(
        kubeconfig, "worker", sandbox_namespace, home_namespace, logs / "worker.kubeconfig"
    )
    redis_url, redis_process = start_redis(logs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
    env.update(
        EXECUTIONER_REDIS_URL=redis_url,
        EXECUTIONER_BACKEND="kubernetes",
        EXECUTIONER_SANDBOX_NAMESPACE=sandbox_namespace,
        EXECUTIONER_SANDBOX_IMAGE=sandbox_image,
        EXECUTIONER_RUNTIME_IMAGES=json.dumps(runtime_images),
        EXECUTIONER_WORKER_CONCURRENCY="8",
        EXECUTIONER_LEASE_SECONDS="5",
        EXECUTIONER_SWEEP_INTERVAL_SECONDS="1",
        EXECUTIONER_GRACE_SECONDS="10",
        KUBECONFIG=worker_kubeconfig,
        **settings,
    )
    worker = start_worker(env, logs / "worker.log", name="kubernetes")
    url, api_process = start_api(env, logs / "api.log")
    refiller = None
    if pool_sizes := json.loads(env.get("EXECUTIONER_KUBERNETES_POOL_SIZES", "{}")):
        # The operator's refiller, alone: a whole operator here would also take other suites' ExecutionRequests.
        operator_kubeconfig = kube.component_kubeconfig(
            kubeconfig, "operator", sandbox_namespace, home_namespace, logs / "operator.kubeconfig"
        )
        refiller = start_pool_refiller({**env, "KUBECONFIG": operator_kubeconfig}, logs / "refiller.log")
        kube.wait_for_pool(kubeconfig, sandbox_namespace, sum(pool_sizes.values()))
    yield Stack(
        url=url,
        env=env,
        logs=logs,
        backend="kubernetes",
        kubeconfig=kubeconfig,
        namespace=sandbox_namespace,
        runtime_class=settings.get("EXECUTIONER_RUNTIME_CLASS_NAME"),
    )
    stop(api_process)
    stop(worker)
    if refiller:
        stop(refiller)
    stop(redis_process)
    kube.delete_namespaces(kubeconfig, sandbox_namespace, home_namespace)


# "local" keeps warm sandboxes (the default), "local-cold" starts one per execution.
BACKENDS = [
    "local",
    "local-cold",
    pytest.param("kubernetes", marks=pytest.mark.cluster),
    pytest.param("gvisor", marks=pytest.mark.cluster),
]


@pytest.fixture(params=BACKENDS)
def backend_stack(request):
    if request.param == "local":
        return request.getfixturevalue("stack")
    if request.param == "local-cold":
        return request.getfixturevalue("cold_stack")
    return request.getfixturevalue(f"{request.param}_stack")


# The backends each runtime beyond the default runs on in the shared suites. A runtime with packages always starts a
# cold sandbox locally, so "local" alone covers the local backend; on the cluster it runs its own image.
RUNTIME_BACKENDS = {"python": BACKENDS, "python-data": ["local", pytest.param("kubernetes", marks=pytest.mark.cluster)]}


def _runtime_cases() -> list:
    cases = []
    for runtime, backends in RUNTIME_BACKENDS.items():
        for backend in backends:
            name, marks = (backend, ()) if isinstance(backend, str) else (backend.values[0], backend.marks)
            cases.append(pytest.param(name, runtime, marks=marks, id=f"{name}-{runtime}"))
    return cases


def pytest_configure(config):
    config.addinivalue_line("markers", "every_runtime: run the run_code test in every runtime (RUNTIME_BACKENDS)")


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc):
    """every_runtime: (backend, runtime) pairs instead of backend_stack's own parameters. As a parametrize mark,
    added before pytest reads the marks, so the fixture's parameters give way to it."""
    if metafunc.definition.get_closest_marker("every_runtime"):
        metafunc.definition.add_marker(
            pytest.mark.parametrize(("backend_stack", "runtime"), _runtime_cases(), indirect=["backend_stack"])
        )


@pytest.fixture
def runtime() -> str:
    """The runtime run_code uses: the default, unless the test is in_every_runtime."""
    return "python"


@pytest.fixture
def run_code(backend_stack, runtime):
    with httpx.Client(base_url=backend_stack.url, timeout=120) as client:

        def run(
            code: str, stdin: str = "", timeout: float = 10, memory_mb: int = 128, files: dict[str, bytes] | None = None
        ) -> dict:
            return run_program(client, code, stdin, timeout, memory_mb, runtime, files)

        run.stack = backend_stack
        run.runtime = runtime
        yield run
