"""Per-execution memory and pids cgroups for the local sandbox, where the host lets us create them."""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


class SandboxCgroup:
    """One cgroup (v2) or one memory + one pids cgroup (v1) holding a single sandbox."""

    def __init__(self, directories: list[Path], oom_file: Path, version: int):
        self.directories = directories
        self.oom_file = oom_file
        self.version = version

    @classmethod
    def create(cls, parent: str, name: str, memory_bytes: int, max_pids: int) -> SandboxCgroup | None:
        """Create and configure the cgroup, or return None when this host does not allow it."""
        try:
            if _v2_has_controllers():
                return cls._create_v2(parent, name, memory_bytes, max_pids)
            if (CGROUP_ROOT / "memory").is_dir() and (CGROUP_ROOT / "pids").is_dir():
                return cls._create_v1(parent, name, memory_bytes, max_pids)
        except OSError:
            return None
        return None

    @classmethod
    def _create_v2(cls, parent: str, name: str, memory_bytes: int, max_pids: int) -> SandboxCgroup:
        base = CGROUP_ROOT / parent
        base.mkdir(exist_ok=True)
        for directory in (CGROUP_ROOT, base):
            (directory / "cgroup.subtree_control").write_text("+memory +pids")
        group = base / name
        group.mkdir()
        (group / "memory.max").write_text(str(memory_bytes))
        _write_if_exists(group / "memory.swap.max", "0")
        (group / "pids.max").write_text(str(max_pids))
        return cls([group], group / "memory.events", 2)

    @classmethod
    def _create_v1(cls, parent: str, name: str, memory_bytes: int, max_pids: int) -> SandboxCgroup:
        memory = CGROUP_ROOT / "memory" / parent / name
        pids = CGROUP_ROOT / "pids" / parent / name
        memory.mkdir(parents=True)
        try:
            (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            _write_if_exists(memory / "memory.memsw.limit_in_bytes", str(memory_bytes))
            pids.mkdir(parents=True)
            (pids / "pids.max").write_text(str(max_pids))
        except OSError:
            _remove([memory, pids])
            raise
        return cls([memory, pids], memory / "memory.oom_control", 1)

    @classmethod
    def create_delegated(cls, parents: list[Path], name: str, memory_bytes: int, max_pids: int) -> SandboxCgroup:
        """Create the cgroup under a subtree delegated to this (unprivileged) user: one cgroup v2 directory, or a
        cgroup v1 memory directory and a v1 pids directory. Raises OSError when the subtree does not allow it."""
        kinds = delegated_kinds(parents)
        if kinds == ["v2"]:
            group = parents[0] / name
            subtree = parents[0] / "cgroup.subtree_control"
            enabled = subtree.read_text().split()
            if "memory" not in enabled or "pids" not in enabled:
                subtree.write_text("+memory +pids")
            group.mkdir()
            try:
                (group / "memory.max").write_text(str(memory_bytes))
                _write_if_exists(group / "memory.swap.max", "0")
                (group / "pids.max").write_text(str(max_pids))
            except OSError:
                _remove([group])
                raise
            return cls([group], group / "memory.events", 2)
        memory_parent, pids_parent = (parents[kinds.index("memory")], parents[kinds.index("pids")])
        memory, pids = memory_parent / name, pids_parent / name
        memory.mkdir()
        try:
            (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            _write_if_exists(memory / "memory.memsw.limit_in_bytes", str(memory_bytes))
            pids.mkdir()
            (pids / "pids.max").write_text(str(max_pids))
        except OSError:
            _remove([memory, pids])
            raise
        return cls([memory, pids], memory / "memory.oom_control", 1)

    def set_memory(self, memory_bytes: int) -> None:
        """Change the memory limit (a warm sandbox gets its execution's when it takes the job). On v1 the
        memory+swap limit may never sit below the memory limit, so the order of the two writes follows the change."""
        group = self.directories[0]
        if self.version == 2:
            (group / "memory.max").write_text(str(memory_bytes))
            return
        limit, memsw = group / "memory.limit_in_bytes", group / "memory.memsw.limit_in_bytes"
        writes = [(limit, memory_bytes), (memsw, memory_bytes)]
        if memory_bytes > int(limit.read_text()):
            writes.reverse()
        for path, value in writes:
            _write_if_exists(path, str(value))

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroups (one bubblewrap stopped mid-setup may leave its sandbox waiting)."""
        for procs_file in self.procs_files():
            try:
                pids = Path(procs_file).read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def procs_files(self) -> list[str]:
        return [str(directory / "cgroup.procs") for directory in self.directories]

    def oom_kills(self) -> int:
        try:
            for line in self.oom_file.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def remove(self) -> None:
        _remove(self.directories)


def delegated_kinds(parents: list[Path]) -> list[str]:
    """What each delegated directory is ("v2", "memory" or "pids"); ValueError unless they are one v2 cgroup or a
    v1 memory and a v1 pids cgroup, each an existing directory this user may create cgroups in."""
    kinds = []
    for parent in parents:
        if not parent.is_dir():
            raise ValueError(f"{parent} is not a directory")
        if (parent / "cgroup.controllers").exists():
            kinds.append("v2")
        elif (parent / "memory.limit_in_bytes").exists():
            kinds.append("memory")
        elif (parent / "pids.max").exists() or (parent / "pids.current").exists():
            kinds.append("pids")
        else:
            raise ValueError(f"{parent} is not a cgroup directory")
        if not os.access(parent, os.W_OK):
            raise ValueError(f"{parent} is not writable by uid {os.geteuid()}")
    if kinds == ["v2"]:
        controllers = (parents[0] / "cgroup.controllers").read_text().split()
        if "memory" not in controllers or "pids" not in controllers:
            raise ValueError(f"{parents[0]} does not offer the memory and pids controllers")
        return kinds
    if sorted(kinds) != ["memory", "pids"]:
        raise ValueError("expected one cgroup v2 directory, or a cgroup v1 memory and a v1 pids directory")
    return kinds


def root_can_create() -> str | None:
    """Why per-execution cgroups cannot be made here as root (None when they can): cgroup v2 with the memory and
    pids controllers, or v1 memory and pids hierarchies, writable by this process."""
    if _v2_has_controllers():
        writable = os.access(CGROUP_ROOT, os.W_OK)
    elif (CGROUP_ROOT / "memory").is_dir() and (CGROUP_ROOT / "pids").is_dir():
        writable = os.access(CGROUP_ROOT / "memory", os.W_OK) and os.access(CGROUP_ROOT / "pids", os.W_OK)
    else:
        return f"{CGROUP_ROOT} offers no memory and pids controllers"
    return None if writable else f"{CGROUP_ROOT} is not writable (a read-only cgroup mount, as in most containers)"


def _v2_has_controllers() -> bool:
    try:
        controllers = (CGROUP_ROOT / "cgroup.controllers").read_text().split()
    except OSError:
        return False
    return "memory" in controllers and "pids" in controllers


def _write_if_exists(path: Path, value: str) -> None:
    if path.exists():
        path.write_text(value)


def _remove(directories: list[Path]) -> None:
    # A cgroup can be removed only once the kernel has finished tearing down its last process.
    for directory in directories:
        for _ in range(100):
            try:
                directory.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    break
                time.sleep(0.01)
