"""Which limit enforcement the local backend picks, and that it never falls back to rlimits silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from executioner.models import Execution, Limits
from executioner.settings import Settings
from executioner.worker.backends import local
from executioner.worker.backends.base import SandboxUnavailable


@pytest.fixture
def ordinary_user(monkeypatch):
    monkeypatch.setattr(local.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(local, "systemd_user_manager", lambda: False)


def test_root_uses_its_own_cgroups(monkeypatch):
    monkeypatch.setattr(local.os, "geteuid", lambda: 0)
    monkeypatch.setattr(local, "root_can_create", lambda: None)
    found = local.enforcement(Settings())
    assert (found.mode, found.limits_enforced) == ("root-cgroup", "cgroup")


def test_ordinary_user_without_cgroups_is_refused(ordinary_user):
    found = local.enforcement(Settings())
    assert found.mode == "refuse"
    message = local.refusal_message(found)
    for fix in ("run the worker as root", "EXECUTIONER_CGROUP_DELEGATE", "EXECUTIONER_ALLOW_WEAK_LIMITS=1"):
        assert fix in message
    execution = Execution.new(code="print(1)", limits=Limits(timeout_seconds=1, memory_mb=64), backend="local")
    with pytest.raises(SandboxUnavailable, match="refusing to run untrusted code"):
        local.LocalBackend(Settings()).run(execution)


def test_weak_limits_only_when_allowed(ordinary_user):
    found = local.enforcement(Settings(allow_weak_limits=True))
    assert (found.mode, found.limits_enforced) == ("rlimit", "rlimit")
    assert "WEAK LIMITS" in found.describe()


def test_a_delegation_that_is_no_cgroup_is_refused_not_ignored(ordinary_user, tmp_path: Path):
    found = local.enforcement(Settings(cgroup_delegate=str(tmp_path), allow_weak_limits=True))
    assert found.mode == "refuse"
    assert f"{tmp_path} is not a cgroup directory" in found.detail


def test_dev_shm_is_its_own_bounded_tmpfs_and_dev_is_read_only():
    settings = Settings(shm_size_mb=8)
    execution = Execution.new(code="", limits=Limits(timeout_seconds=1, memory_mb=64), backend="local")
    argv = local.LocalBackend(settings).command("bwrap", {"seccomp": 9}, execution, None)
    shm = argv.index("/dev/shm")
    assert argv[shm - 1] == "--tmpfs" and argv[shm - 5 : shm - 3] == ["--size", str(8 * 1024 * 1024)]
    assert argv.index("/dev") < shm < argv.index("--remount-ro", shm)
    assert argv[argv.index("--remount-ro", shm) + 1] == "/dev"
