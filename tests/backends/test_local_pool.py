"""The local backend's warm sandboxes: one execution each, refilled, replaced when they die, gone at shutdown.

Real bubblewrap sandboxes, cgroups and workers throughout; the shared behaviour and escape suites run on warm
sandboxes too (`run_code[local]`; `run_code[local-cold]` is the cold path).
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx
import pytest

from executioner.models import Execution, Limits, Outcome, Status
from executioner.settings import Settings
from executioner.worker.backends.cgroups import CGROUP_ROOT
from executioner.worker.backends.local import LocalBackend
from helpers.programs import new_marker, program, wait_until
from helpers.stack import run_program, start_worker, stop

SANDBOX_FACTS = program(
    """
    import os
    files = sorted(os.listdir("/tmp"))
    others = sorted(p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid()))
    open("/tmp/marker", "w").write("left by an earlier execution")
    os.system("sleep 60 &")  # a process that would outlive the program, were the sandbox reused
    print(os.readlink("/proc/self/ns/pid"), os.readlink("/proc/self/ns/mnt"), files, others)
    """
)


def execution(code: str = "print('hello')", timeout: float = 5, memory_mb: int = 64) -> Execution:
    return Execution.new(
        code=code, limits=Limits(timeout_seconds=timeout, memory_mb=memory_mb), backend="local", status=Status.running
    )


@pytest.fixture
def pooled():
    """A local backend whose pool holds `size` warm sandboxes, destroyed afterwards."""
    backends = []

    def make(size: int) -> LocalBackend:
        backend = LocalBackend(Settings(local_pool_size=size, cgroup_parent=f"executioner-{new_marker('pool')}"))
        backend.start_pool()
        backends.append(backend)
        assert wait_until(lambda: backend.pool.ready() == size, 30), "the pool never filled"
        return backend

    yield make
    for backend in backends:
        backend.close()
        remove_cgroup_parent(backend.settings.cgroup_parent)


def remove_cgroup_parent(name: str) -> None:
    """The test's own cgroup parent; the kernel may take a moment to release the last sandbox's cgroups."""

    def removed() -> bool:
        for controller in ("memory", "pids", ""):  # cgroup v1's hierarchies, or v2's one
            try:
                (CGROUP_ROOT / controller / name).rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                return False
        return True

    assert wait_until(removed, 10), f"cgroups were left under {name}"


def test_two_executions_never_share_a_sandbox(stack):
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        documents = [run_program(client, SANDBOX_FACTS) for _ in range(4)]
    assert all(doc["status"] == "succeeded" and doc["sandbox_start"] == "warm" for doc in documents), documents
    facts = [doc["stdout"].split(" ", 2) for doc in documents]
    assert len({pid_ns for pid_ns, _, _ in facts}) == 4, "two executions shared a PID namespace"
    assert len({mnt_ns for _, mnt_ns, _ in facts}) == 4, "two executions shared a mount namespace"
    # Each saw a fresh /tmp (its own empty outputs/ alone) and no process but the runner and itself: nothing of the
    # one before.
    assert all(rest.strip() == "['outputs'] []" for _, _, rest in facts), facts


def test_the_limits_are_the_executions_own(pooled):
    backend = pooled(1)
    hog = "x = bytearray(200 * 1024 * 1024); print('kept', len(x))"
    outcome = backend.run(execution(hog, memory_mb=64))
    assert outcome.sandbox_start == "warm" and outcome.status == Status.memory_exceeded, outcome
    assert wait_until(lambda: backend.pool.ready() == 1, 30)
    outcome = backend.run(execution("import time; time.sleep(5)", timeout=0.5))
    assert outcome.sandbox_start == "warm" and outcome.status == Status.timed_out, outcome


def test_the_time_limit_starts_with_the_program_not_the_sandbox(pooled):
    backend = pooled(1)
    threading.Event().wait(1.5)  # the sandbox has waited longer than the whole time limit
    outcome = backend.run(execution("import time; time.sleep(0.5); print('done')", timeout=1))
    assert (outcome.sandbox_start, outcome.status, outcome.stdout) == ("warm", Status.succeeded, "done\n"), outcome


def test_the_pool_refills(pooled):
    backend = pooled(2)
    first = set(backend.pool.pids())
    for _ in range(3):
        assert backend.run(execution()).sandbox_start == "warm"
        assert wait_until(lambda: backend.pool.ready() == 2, 30), "the pool did not refill"
    assert not first & set(backend.pool.pids()), "a used sandbox came back to the pool"
    assert backend.pool.stats.hits == 3 and backend.pool.stats.started == 5


def test_an_empty_pool_falls_back_to_the_cold_path(pooled):
    backend = pooled(1)
    held = threading.Event()
    start = backend.pool._start
    backend.pool._start = lambda: (held.wait(), start())[1]  # refills wait until the test lets them
    try:
        first, second = backend.run(execution()), backend.run(execution())
    finally:
        held.set()
    assert (first.sandbox_start, second.sandbox_start) == ("warm", "cold")
    assert first.stdout == second.stdout == "hello\n" and second.limits_enforced == "cgroup"
    assert backend.pool.stats.misses == 1


def test_a_sandbox_killed_while_waiting_is_replaced(pooled):
    backend = pooled(1)
    [victim] = backend.pool.pids()
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: backend.pool.pids() not in ([], [victim]), 10), "the dead sandbox was not replaced"
    assert backend.pool.stats.replaced_dead == 1
    outcome = backend.run(execution())
    assert (outcome.sandbox_start, outcome.stdout) == ("warm", "hello\n")


def test_a_sandbox_lost_as_it_is_taken_leaves_the_execution_to_the_cold_path(pooled):
    backend = pooled(1)
    sandbox = backend.pool.take()
    sandbox.process.kill()
    sandbox.process.wait()
    inside = sandbox.cgroup.procs_files()[0]
    assert wait_until(lambda: not Path(inside).read_text().split(), 10), "the sandbox outlived its bubblewrap"
    outcome = backend._run_warm(sandbox, execution(), None)
    assert outcome is None  # the caller then starts a cold sandbox; no code ran in this one
    assert isinstance(backend.run(execution()), Outcome)


def warm_processes(cgroup_parent: str) -> tuple[set[int], list[Path]]:
    """The processes in the warm sandboxes' cgroups under `cgroup_parent`, and those cgroups."""
    groups = [
        group for where in ("memory", "pids", "") for group in (CGROUP_ROOT / where / cgroup_parent).glob("warm-*")
    ]
    pids = {int(pid) for group in groups for pid in (group / "cgroup.procs").read_text().split()}
    return pids, groups


def test_shutdown_leaves_no_process_or_cgroup(stack_env, tmp_path):
    parent = f"executioner-{new_marker('shutdown')}"
    env = {**stack_env, "EXECUTIONER_LOCAL_POOL_SIZE": "3", "EXECUTIONER_CGROUP_PARENT": parent}
    env["EXECUTIONER_REDIS_URL"] = env["EXECUTIONER_REDIS_URL"].rsplit("/", 1)[0] + "/9"  # takes no one's jobs
    worker = start_worker(env, tmp_path / "worker.log", name="shutdown")
    try:
        assert wait_until(lambda: len(warm_processes(parent)[0]) == 3, 30), "the worker's pool never filled"
        pids, groups = warm_processes(parent)
    finally:
        stop(worker)
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text()[-2000:]
    survivors = lambda: [pid for pid in pids if Path(f"/proc/{pid}").exists()]  # noqa: E731
    assert wait_until(lambda: not survivors(), 10), f"warm sandboxes outlived their worker: {survivors()}"
    assert not [group for group in groups if group.exists()], "a warm sandbox's cgroup outlived its worker"
    remove_cgroup_parent(parent)


def test_a_pool_closed_while_it_fills_leaves_nothing_behind():
    """Closing while sandboxes are still being set up (bubblewrap killed mid-setup) leaves no process or cgroup."""
    parent = f"executioner-{new_marker('closing')}"
    for pause in (0, 0.005, 0.01, 0.02, 0.05):
        backend = LocalBackend(Settings(local_pool_size=3, cgroup_parent=parent))
        backend.start_pool()
        threading.Event().wait(pause)
        backend.close()
        assert not warm_processes(parent)[0], f"processes outlived the pool closed after {pause} s"
    remove_cgroup_parent(parent)
