"""The local sandbox run by an ordinary (non-root) user: every limit holds, or `executioner run` refuses to start.

CI runs as root: these tests create an unprivileged account and run the CLI as that account (setpriv), from a
world-readable copy of the sources. With a delegated cgroup v1 memory+pids subtree every memory attack below ends
`memory_exceeded` or bounded; without one the CLI refuses unless EXECUTIONER_ALLOW_WEAK_LIMITS=1, and then the
result says its limits were only rlimits.
"""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from helpers.ordinary_user import DelegatedV1, UserTree, build_tree, ensure_user
from helpers.programs import program

FORKED_CHILDREN = program(
    """
    import os, time
    children = []
    for _ in range(6):
        pid = os.fork()
        if pid == 0:
            block = bytearray(100 * 1024 * 1024)
            for i in range(0, len(block), 4096):
                block[i] = 1
            time.sleep(1)
            os._exit(0)
        children.append(pid)
    alive = sum(1 for pid in children if os.waitpid(pid, 0)[1] == 0)
    print("children that kept 100 MiB:", alive)
    """
)


def files_written_to(directory: str) -> str:
    """64 files of 8 MiB into `directory`, stopping at the first refusal."""
    return program(
        f"""
    written = 0
    try:
        for i in range(64):
            with open(f"{directory}/f{{i}}", "wb") as f:
                f.write(b"x" * 8 * 1024 * 1024)
            written += 8
    except OSError as exc:
        print("stopped:", exc.strerror)
    print("wrote", written)
    """
    )


SHM_FILES = files_written_to("/dev/shm")
DEV_FILES = files_written_to("/dev")
BIG_BYTEARRAY = "block = bytearray(1024 * 1024 * 1024)\nprint('allocated', len(block))\n"
HELLO = "import os\nprint('hello from', os.getuid())\n"


@pytest.fixture(scope="module")
def tree():
    if os.geteuid() != 0:
        raise AssertionError("these tests create a user account and cgroups: run them as root (CI does)")
    for tool in ("setpriv", "useradd", "bwrap"):
        assert shutil.which(tool), f"{tool} is required"
    uid, gid = ensure_user()
    made = build_tree(uid, gid)
    yield made
    shutil.rmtree(made.root, ignore_errors=True)


@pytest.fixture(scope="module")
def delegated(tree: UserTree):
    subtree = DelegatedV1.create(tree.uid, tree.gid, f"executioner-test-{uuid.uuid4().hex[:8]}")
    yield subtree
    subtree.remove()


def run_delegated(tree: UserTree, delegated: DelegatedV1, source: str, name: str) -> dict:
    doc = tree.run_json(tree.program(name, source), {"EXECUTIONER_CGROUP_DELEGATE": delegated.setting})
    assert doc["limits_enforced"] == "cgroup", doc
    assert delegated.children() == [], "the execution's cgroups outlived it"
    return doc


def test_delegated_cgroup_runs_programs_as_the_user(tree, delegated):
    doc = run_delegated(tree, delegated, HELLO, "hello.py")
    assert doc["status"] == "succeeded", doc
    assert doc["stdout"] == "hello from 65534\n"


def test_delegated_forked_children_share_one_memory_limit(tree, delegated):
    doc = run_delegated(tree, delegated, FORKED_CHILDREN, "fork.py")
    assert doc["status"] == "memory_exceeded" or "kept 100 MiB: 6" not in doc["stdout"], doc
    assert doc["status"] in ("memory_exceeded", "succeeded"), doc


def test_delegated_dev_shm_is_bounded(tree, delegated):
    doc = run_delegated(tree, delegated, SHM_FILES, "shm.py")
    assert doc["status"] in ("memory_exceeded", "succeeded"), doc
    if doc["status"] == "succeeded":
        written = int(doc["stdout"].split("wrote ")[-1])
        assert written <= 16, doc["stdout"]


def test_delegated_dev_is_not_writable(tree, delegated):
    doc = run_delegated(tree, delegated, DEV_FILES, "dev.py")
    assert doc["status"] == "succeeded", doc
    assert doc["stdout"] == "stopped: Read-only file system\nwrote 0\n"


def test_delegated_big_allocation_is_stopped(tree, delegated):
    doc = run_delegated(tree, delegated, BIG_BYTEARRAY, "big.py")
    assert doc["status"] == "memory_exceeded", doc


def test_without_cgroups_run_refuses_and_says_how_to_fix_it(tree):
    result = tree.run(tree.program("hello.py", HELLO))
    assert result.returncode == 2, result
    assert result.stdout == ""
    for fix in ("run the worker as root", "EXECUTIONER_CGROUP_DELEGATE", "EXECUTIONER_ALLOW_WEAK_LIMITS=1"):
        assert fix in result.stderr, result.stderr


def test_unusable_delegation_refuses_rather_than_degrading(tree):
    result = tree.run(tree.program("hello.py", HELLO), {"EXECUTIONER_CGROUP_DELEGATE": "/sys/fs/cgroup/memory"})
    assert result.returncode == 2, result
    assert "EXECUTIONER_CGROUP_DELEGATE=/sys/fs/cgroup/memory is unusable" in result.stderr, result.stderr


def test_weak_limits_when_allowed_are_reported(tree):
    result = tree.run(tree.program("shm.py", SHM_FILES), {"EXECUTIONER_ALLOW_WEAK_LIMITS": "1"})
    assert "WEAK LIMITS" in result.stderr, result.stderr
    doc = tree.run_json(tree.program("shm.py", SHM_FILES), {"EXECUTIONER_ALLOW_WEAK_LIMITS": "1"})
    assert doc["limits_enforced"] == "rlimit", doc
    assert doc["status"] == "succeeded", doc
    assert doc["stdout"].endswith("wrote 16\n"), doc["stdout"]
