"""The Kubernetes warm pool on the real cluster: atomic claims, one execution per pod, refills, fallbacks, failures."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time

import httpx
import pytest
from conftest import STACK_POOL_SIZES

from executioner.kube import POOL_LABEL, kubernetes_api_client
from executioner.models import Execution, Limits, Status
from executioner.settings import Settings
from executioner.worker.backends.kubernetes import KubernetesBackend
from executioner.worker.backends.sandbox_pods import pool_job
from helpers import kube
from helpers.programs import wait_until
from helpers.stack import run_program

pytestmark = pytest.mark.cluster
HOSTNAME = "import socket\nprint(socket.gethostname())"


def execution(code: str = HOSTNAME, timeout: float = 10, memory_mb: int = 128) -> Execution:
    return Execution.new(
        code=code,
        limits=Limits(timeout_seconds=timeout, memory_mb=memory_mb),
        backend="kubernetes",
        status=Status.running,
    )


@pytest.fixture
def own_pool(kubernetes_stack, kubeconfig, tmp_path):
    """A sandbox namespace of its own with no refiller: `make(n)` puts n Ready pool pods in it; `backend()` is a
    worker's backend there, with the worker's least-privilege credentials."""
    namespace, home = kube.unique("exr-pool"), kube.unique("exr-pool-home")
    kube.create_sandbox_namespace(kubeconfig, namespace)
    worker_kubeconfig = kube.component_kubeconfig(kubeconfig, "worker", namespace, home, tmp_path / "worker.kubeconfig")
    settings = Settings(
        backend="kubernetes",
        sandbox_namespace=namespace,
        sandbox_image=kubernetes_stack.env["EXECUTIONER_SANDBOX_IMAGE"],
        runtime_images=json.loads(kubernetes_stack.env["EXECUTIONER_RUNTIME_IMAGES"]),
        kubernetes_pool_sizes={"python": 1, "python-data": 1},
        grace_seconds=10,
    )
    admin = KubernetesBackend(settings, kubernetes_api_client(kubeconfig))

    class Pool:
        def make(self, count: int, runtime: str = "python", **overrides) -> None:
            made_with = settings.model_copy(update=overrides)
            for _ in range(count):
                admin.batch.create_namespaced_job(namespace, pool_job(runtime, made_with))
            kube.wait_for_pool(kubeconfig, namespace, count)

        def backend(self, **overrides) -> KubernetesBackend:
            return KubernetesBackend(settings.model_copy(update=overrides), kubernetes_api_client(worker_kubeconfig))

        def ready(self) -> list[str]:
            return kube.ready_pool_jobs(kubeconfig, namespace)

        def pool_jobs(self) -> list[str]:
            return kube.kubectl(
                kubeconfig, "get", "jobs", "-n", namespace, "-l", POOL_LABEL, "-o", "name"
            ).stdout.split()

    pool = Pool()
    pool.namespace = namespace
    yield pool
    kube.delete_namespaces(kubeconfig, namespace, home)


def test_concurrent_claims_never_take_a_pool_pod_twice(own_pool):
    own_pool.make(3)
    backends = [own_pool.backend() for _ in range(4)]  # four workers
    jobs = [execution() for _ in range(12)]
    barrier = threading.Barrier(len(jobs))

    def claim(index: int):
        barrier.wait()
        return backends[index % len(backends)].pool.claim(jobs[index])

    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as threads:
        claims = list(threads.map(claim, range(len(jobs))))
    won = [claimed for claimed in claims if claimed is not None]
    assert len(won) == 3, claims  # every Ready pod claimed once, and no more claims than pods
    assert len({claimed.job for claimed in won}) == len({claimed.pod for claimed in won}) == 3
    assert own_pool.ready() == []


def test_a_warm_execution_runs_in_its_own_pod_which_is_deleted_afterwards(own_pool):
    own_pool.make(2)
    backend = own_pool.backend()
    outcomes = []
    for _ in range(2):
        job = execution()
        outcomes.append(backend.run(job))
        backend.cleanup(job.id)
    assert [(o.status, o.sandbox_start) for o in outcomes] == [(Status.succeeded, "warm")] * 2, outcomes
    pods = [o.stdout.strip() for o in outcomes]
    assert pods[0] != pods[1] and all(pod.startswith("pool-python-") for pod in pods), pods
    assert wait_until(lambda: own_pool.pool_jobs() == [], 30), own_pool.pool_jobs()
    # with no pod left, the next execution is served cold
    job = execution()
    outcome = backend.run(job)
    backend.cleanup(job.id)
    assert (outcome.status, outcome.sandbox_start) == (Status.succeeded, "cold"), outcome
    assert outcome.stdout.startswith(f"exec-{job.id}")


def test_each_runtime_has_its_own_pool(own_pool):
    own_pool.make(1, "python-data")
    backend = own_pool.backend()
    job = Execution.new(
        code="import socket, numpy\nprint(socket.gethostname(), numpy.arange(4).sum())",
        runtime="python-data",
        limits=Limits(timeout_seconds=20, memory_mb=Settings().runtime_memory_mb("python-data")),
        backend="kubernetes",
        status=Status.running,
    )
    outcome = backend.run(job)
    backend.cleanup(job.id)
    assert (outcome.status, outcome.sandbox_start) == (Status.succeeded, "warm"), outcome
    pod, total = outcome.stdout.split()
    assert pod.startswith("pool-python-data-") and total == "6"
    # a python execution finds no python pod: the python-data pool is not its own
    plain = execution()
    outcome = backend.run(plain)
    backend.cleanup(plain.id)
    assert (outcome.status, outcome.sandbox_start) == (Status.succeeded, "cold"), outcome


def test_a_warm_pod_under_gvisor_runs_in_gvisor(own_pool):
    own_pool.make(1, runtime_class_name="gvisor")
    backend = own_pool.backend(runtime_class_name="gvisor")
    job = execution("print(open('/proc/version').read())")
    outcome = backend.run(job)
    backend.cleanup(job.id)
    assert (outcome.status, outcome.sandbox_start) == (Status.succeeded, "warm"), outcome
    assert "gvisor" in outcome.stdout, outcome.stdout  # the sentry's own kernel version, not the node's


def test_only_the_runtime_default_memory_takes_a_pool_pod(own_pool):
    own_pool.make(1)
    backend = own_pool.backend()
    job = execution("print('small')", memory_mb=64)
    outcome = backend.run(job)
    backend.cleanup(job.id)
    assert (outcome.status, outcome.sandbox_start, outcome.stdout) == (Status.succeeded, "cold", "small\n")
    assert len(own_pool.ready()) == 1  # untouched


def test_a_claimed_pod_that_dies_before_its_job_arrives_is_given_up_for_another(own_pool, kubeconfig):
    own_pool.make(2)
    backend = own_pool.backend()
    real_claim = backend.pool.claim
    killed = []

    def claim_then_lose_the_pod(job):
        claimed = real_claim(job)
        if claimed is not None and not killed:  # the first claimed pod dies before the worker attaches
            kube.kubectl(
                kubeconfig, "delete", "pod", claimed.pod, "-n", own_pool.namespace, "--grace-period=0", "--force"
            )
            killed.append(claimed)
        return claimed

    backend.pool.claim = claim_then_lose_the_pod
    job = execution()
    outcome = backend.run(job)
    backend.cleanup(job.id)
    assert killed
    # nothing ran in the lost pod, so the execution went to the other one
    assert (outcome.status, outcome.sandbox_start) == (Status.succeeded, "warm"), outcome
    assert outcome.stdout.strip() != killed[0].pod
    assert wait_until(lambda: own_pool.pool_jobs() == [], 30), own_pool.pool_jobs()


def test_a_pool_pod_killed_mid_execution_ends_error_with_a_reason(own_pool, kubeconfig):
    own_pool.make(1)
    backend = own_pool.backend()
    job = execution("import time\nprint('started', flush=True)\ntime.sleep(30)", timeout=40)

    def kill_when_claimed():
        def claimed_pod():
            return [
                name
                for name in kube.execution_objects(kubeconfig, own_pool.namespace, job.id, "jobs,pods")
                if name.startswith("pod/")
            ]

        if wait_until(claimed_pod, 30):
            time.sleep(1)  # the program is running by now
            kube.kubectl(kubeconfig, "delete", *claimed_pod(), "-n", own_pool.namespace, "--grace-period=0", "--force")

    killer = threading.Thread(target=kill_when_claimed)
    killer.start()
    started = time.monotonic()
    try:
        outcome = backend.run(job)
    finally:
        killer.join()
        backend.cleanup(job.id)
    assert outcome.status is Status.error and outcome.sandbox_start == "warm", outcome
    assert "deleted" in outcome.error or "ended without reporting" in outcome.error, outcome.error
    assert time.monotonic() - started < 30


def test_the_stack_pool_refills_and_replaces_a_pod_killed_while_waiting(kubernetes_stack, kubeconfig):
    size = sum(STACK_POOL_SIZES.values())
    kube.wait_for_pool(kubeconfig, kubernetes_stack.namespace, size)
    with httpx.Client(base_url=kubernetes_stack.url, timeout=120) as api:
        documents = [run_program(api, HOSTNAME) for _ in range(size)]
    assert all(doc["status"] == "succeeded" for doc in documents), documents
    assert any(doc["sandbox_start"] == "warm" for doc in documents), documents
    for doc in documents:  # each pod served one execution and is gone
        assert wait_until(
            lambda doc=doc: not kube.execution_objects(kubeconfig, kubernetes_stack.namespace, doc["id"]), 30
        )
    kube.wait_for_pool(kubeconfig, kubernetes_stack.namespace, size)

    victim = kube.ready_pool_jobs(kubeconfig, kubernetes_stack.namespace)[0]
    kube.kubectl(
        kubeconfig, "delete", "pods", "-n", kubernetes_stack.namespace, "-l", f"job-name={victim}", "--grace-period=0"
    )
    jobs = lambda: kube.kubectl(  # noqa: E731
        kubeconfig, "get", "jobs", "-n", kubernetes_stack.namespace, "-l", POOL_LABEL, "-o", "name"
    ).stdout.split()
    assert wait_until(lambda: f"job.batch/{victim}" not in jobs(), 60), jobs()
    kube.wait_for_pool(kubeconfig, kubernetes_stack.namespace, size)


def test_concurrent_executions_through_the_api_each_get_a_sandbox_of_their_own(kubernetes_stack):
    def run(_: int) -> dict:
        with httpx.Client(base_url=kubernetes_stack.url, timeout=180) as api:
            return run_program(api, HOSTNAME)

    with concurrent.futures.ThreadPoolExecutor(10) as threads:
        documents = list(threads.map(run, range(10)))
    assert [doc["status"] for doc in documents] == ["succeeded"] * 10, [doc["error"] for doc in documents]
    pods = [doc["stdout"].strip() for doc in documents]
    assert len(set(pods)) == 10, pods
    for doc, pod in zip(documents, pods, strict=True):  # the document says which path served it
        assert pod.startswith("pool-python-" if doc["sandbox_start"] == "warm" else f"exec-{doc['id']}"), (doc, pod)
    assert "warm" in {doc["sandbox_start"] for doc in documents}
