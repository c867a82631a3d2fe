"""The local backend: each execution runs the sandbox runner under bubblewrap on this machine.

Namespaces: user, pid, net (no interfaces but its own loopback), ipc, uts, mount
and cgroup. The root is an empty read-only tmpfs with the host's /usr bound
read-only (minus /usr/local), a fresh /proc and /dev, a size-limited private
/tmp, and the execution's input bound read-only at /sandbox. When the worker is
root, bubblewrap itself runs as an unprivileged host user inside per-execution
memory and pids cgroups; otherwise the runner falls back to rlimits.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from executioner.models import Execution, Outcome, Status, memory_exceeded_reason
from executioner.runner_protocol import (
    INPUT_DIR,
    RUNNER_PATH,
    EnvelopeError,
    parse_envelope,
    runner_args,
    runner_source,
)
from executioner.settings import Settings
from executioner.worker.backends.base import LOST_WORKER_REASON, SandboxUnavailable
from executioner.worker.backends.cgroups import SandboxCgroup

log = logging.getLogger(__name__)
OOM_FILE_IN_SANDBOX = "/run/executioner"
# Sandbox overhead outside the user's program (bwrap, the runner's interpreter).
RUNTIME_OVERHEAD_BYTES = 24 * 1024 * 1024


class LocalBackend:
    name = "local"

    def __init__(self, settings: Settings):
        self.settings = settings
        self._processes: dict[str, subprocess.Popen] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()

    def bwrap(self) -> str:
        path = shutil.which(self.settings.bwrap_path)
        if not path:
            raise SandboxUnavailable(
                f"bubblewrap ({self.settings.bwrap_path}) is not installed; refusing to run code without a sandbox"
            )
        return path

    def run(self, execution: Execution) -> Outcome:
        bwrap = self.bwrap()
        with tempfile.TemporaryDirectory(prefix="executioner-") as tmp:
            workdir = Path(tmp)
            self._write_input(workdir, execution)
            cgroup = None
            if os.geteuid() == 0:
                cgroup = SandboxCgroup.create(
                    self.settings.cgroup_parent,
                    execution.id,
                    execution.limits.memory_mb * 1024 * 1024 + RUNTIME_OVERHEAD_BYTES,
                    self.settings.max_processes,
                )
            try:
                return self._run_sandbox(bwrap, workdir, execution, cgroup)
            finally:
                if cgroup:
                    cgroup.remove()
                with self._lock:
                    self._processes.pop(execution.id, None)
                    self._cancelled.discard(execution.id)

    def cancel(self, execution_id: str) -> None:
        with self._lock:
            self._cancelled.add(execution_id)
            process = self._processes.get(execution_id)
        if process and process.poll() is None:
            process.kill()  # bwrap --die-with-parent takes the whole sandbox down with it

    def _spawn(self, argv: list[str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=pass_fds,
            cwd="/",
            env={"PATH": "/usr/bin:/bin"},
        )

    def _spawn_in_cgroup(self, command, cgroup: SandboxCgroup) -> subprocess.Popen:
        """Start bubblewrap held at --block-fd, move its sandbox process into the cgroups, then release it,
        so everything the sandbox ever runs is inside them. `command(gate)` gives the command line."""
        info_read, info_write = os.pipe()
        block_read, block_write = os.pipe()
        try:
            process = self._spawn(command((info_write, block_read)), pass_fds=(info_write, block_read))
        finally:
            os.close(info_write)
            os.close(block_read)
        try:
            with os.fdopen(info_read, "rb") as info:
                child = json.loads(info.read() or b"{}").get("child-pid")
            if child is None:
                raise SandboxUnavailable("bubblewrap did not start its sandbox")
            for procs_file in cgroup.procs_files():
                with open(procs_file, "w") as f:
                    f.write(str(child))
            os.write(block_write, b"\n")
        except BaseException:
            process.kill()
            raise
        finally:
            os.close(block_write)
        return process

    def cleanup(self, execution_id: str) -> None:
        """Nothing outlives `run` here: the sandbox, its files and its cgroups are gone already."""

    def recover(self, execution: Execution) -> Outcome | None:
        # A local sandbox dies with its worker (--die-with-parent): nothing is left to harvest.
        return Outcome.failure(Status.error, LOST_WORKER_REASON)

    def _write_input(self, workdir: Path, execution: Execution) -> None:
        # The sandbox runs as another user: it needs to read these, never to write them.
        workdir.chmod(0o755)
        (workdir / "input").mkdir(mode=0o755)
        for name, content in (("main.py", execution.code), ("stdin", execution.stdin)):
            path = workdir / "input" / name
            path.write_text(content, encoding="utf-8")
            path.chmod(0o644)
        shutil.copyfile(runner_source(), workdir / "runner.py")
        (workdir / "runner.py").chmod(0o644)

    def command(
        self,
        bwrap: str,
        workdir: Path,
        execution: Execution,
        cgroup: SandboxCgroup | None,
        gate: tuple[int, int] | None = None,
    ) -> list[str]:
        """The whole command line; `gate` (info fd, block fd) holds the sandbox until it is in its cgroups."""
        s = self.settings
        argv = []
        if os.geteuid() == 0:
            # bubblewrap itself runs as the unprivileged sandbox user. setpriv rather than a
            # preexec_fn: Python then spawns with vfork, about 10 ms faster per execution.
            # --pdeathsig: bubblewrap dies with the worker even while it waits at the cgroup gate, before its own
            # --die-with-parent is in force (a worker killed in that window once left it waiting forever).
            argv += [
                "setpriv",
                f"--reuid={s.sandbox_uid}",
                f"--regid={s.sandbox_gid}",
                "--clear-groups",
                "--pdeathsig",
                "KILL",
                "--",
            ]
        argv += [bwrap]
        if gate:
            argv += ["--info-fd", str(gate[0]), "--block-fd", str(gate[1])]
        # Flags and their values read best side by side.
        # fmt: off
        argv += [
            "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--disable-userns",
            "--uid", "65534", "--gid", "65534", "--hostname", "sandbox",
            "--die-with-parent", "--new-session", "--as-pid-1",
            "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
            "--ro-bind", "/usr", "/usr",
            "--tmpfs", "/usr/local", "--remount-ro", "/usr/local",
        ]
        # fmt: on
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                argv += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                argv += ["--ro-bind", top, top]
        # fmt: off
        argv += [
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(s.tmp_size_mb * 1024 * 1024), "--tmpfs", "/tmp",
            "--ro-bind", str(workdir / "input"), INPUT_DIR,
            "--ro-bind", str(workdir / "runner.py"), RUNNER_PATH,
        ]
        # fmt: on
        if cgroup:
            argv += ["--ro-bind", str(cgroup.oom_file), f"{OOM_FILE_IN_SANDBOX}/{cgroup.oom_file.name}"]
        argv += ["--remount-ro", "/", "--chdir", "/tmp", s.sandbox_python, "-I", "-S", RUNNER_PATH]
        argv += runner_args(execution, s, memory_rlimit=cgroup is None, max_processes=s.max_processes)
        return argv

    def _run_sandbox(self, bwrap: str, workdir: Path, execution: Execution, cgroup: SandboxCgroup | None) -> Outcome:
        if cgroup is None:
            process = self._spawn(self.command(bwrap, workdir, execution, None))
        else:
            process = self._spawn_in_cgroup(lambda gate: self.command(bwrap, workdir, execution, cgroup, gate), cgroup)
        with self._lock:
            self._processes[execution.id] = process
            cancelled_early = execution.id in self._cancelled
        if cancelled_early:
            process.kill()
        try:
            stdout, stderr = process.communicate(timeout=self.settings.sandbox_deadline(execution.limits))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return Outcome.failure(Status.timed_out, "the sandbox did not stop at its deadline and was killed")
        if execution.id in self._cancelled:
            return Outcome.cancelled()
        try:
            return parse_envelope(stdout.decode("utf-8", errors="replace"))
        except EnvelopeError as exc:
            if cgroup and cgroup.oom_kills() > 0:
                return Outcome.failure(Status.memory_exceeded, memory_exceeded_reason(execution.limits.memory_mb))
            reason = stderr.decode("utf-8", errors="replace").strip().splitlines()
            detail = f" ({reason[-1]})" if reason else ""
            log.warning("sandbox for %s failed: exit %s%s", execution.id, process.returncode, detail)
            return Outcome.failure(Status.error, f"{exc}{detail}")
