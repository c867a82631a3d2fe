"""The local backend: each execution runs the sandbox runner under bubblewrap on this machine.

Namespaces: user, pid, net (no interfaces but its own loopback), ipc, uts, mount
and cgroup. The root is an empty read-only tmpfs with the host's /usr bound
read-only (minus /usr/local), a fresh /proc and a read-only /dev (its device
nodes) with a size-limited /dev/shm, a size-limited private /tmp, and the
execution's input (code, stdin, input files, and the runner) as read-only files
that bubblewrap copies from in-memory descriptors: no host directory holds them.
A runtime with packages gets its prepared directory (runtime_packages.py) bound
read-only at RUNTIME_PACKAGES_PATH, from a descriptor the worker opened. A seccomp filter (seccomp.py) denies the kernel surfaces an
unprivileged program has no use for (the runner turns core dumps off itself).

Memory and process limits (see `enforcement`): when the worker is root, bubblewrap
itself runs as an unprivileged host user inside per-execution memory and pids
cgroups. A non-root worker does the same under a cgroup subtree delegated to its
user (EXECUTIONER_CGROUP_DELEGATE), or inside a transient systemd user scope where
a user manager runs; without either it refuses to run unless
EXECUTIONER_ALLOW_WEAK_LIMITS=1, and then the runner falls back to rlimits.
Every outcome says which in `limits_enforced`.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import subprocess
import threading
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from executioner.files import decoded
from executioner.models import Execution, Outcome, Status, memory_exceeded_reason
from executioner.runner_protocol import (
    CODE_FD,
    CODE_PATH,
    FILES_MANIFEST_PATH,
    JOB_ON_STDIN,
    RUNNER_PATH,
    STDIN_PATH,
    EnvelopeError,
    OutputSink,
    RunnerLines,
    files_manifest,
    input_file_source,
    parse_envelope,
    runner_args,
    runner_source,
    warm_job,
)
from executioner.runtime_packages import RuntimeNotPrepared, prepared_packages
from executioner.runtimes import RUNTIME_PACKAGES_PATH
from executioner.settings import Settings
from executioner.worker.backends.base import LOST_WORKER_REASON, SandboxUnavailable
from executioner.worker.backends.cgroups import SandboxCgroup, delegated_kinds, root_can_create
from executioner.worker.backends.local_pool import WarmPool, WarmSandbox
from executioner.worker.backends.seccomp import SeccompUnavailable, filter_fd, filter_program

log = logging.getLogger(__name__)
# Sandbox overhead outside the user's program (bwrap, the runner's interpreter).
RUNTIME_OVERHEAD_BYTES = 24 * 1024 * 1024


WEAK_LIMITS_ADVICE = (
    "run the worker as root (per-execution cgroups), "
    "or delegate a cgroup subtree to this user and name it in EXECUTIONER_CGROUP_DELEGATE "
    "(one cgroup v2 directory, or a v1 memory and a v1 pids directory, owned by this user; see the README's "
    "Security model), or log in through systemd so a user manager runs (systemd-run --user), "
    "or accept weaker limits with EXECUTIONER_ALLOW_WEAK_LIMITS=1 (rlimits: forked children and files in "
    "/dev/shm and /tmp escape the memory limit)"
)


@dataclass(frozen=True)
class Enforcement:
    """How this process would hold a sandbox to its memory and process limits."""

    mode: str  # "root-cgroup", "delegated-cgroup", "systemd-scope", "rlimit" or "refuse"
    detail: str
    delegated: tuple[Path, ...] = ()

    @property
    def runs(self) -> bool:
        return self.mode != "refuse"

    @property
    def limits_enforced(self) -> str:
        return "rlimit" if self.mode == "rlimit" else "cgroup"

    def describe(self) -> str:
        return f"{self.mode}: {self.detail}"


def systemd_user_manager() -> bool:
    """Whether a systemd user manager answers for this user and can hold a scope to MemoryMax and TasksMax: only
    on cgroup v2 with the memory and pids controllers delegated to it (systemd's default user@.service does);
    on cgroup v1 a user scope's MemoryMax would be silently ignored."""
    uid = os.geteuid()
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    if not shutil.which("systemd-run") or not Path(runtime, "systemd", "private").exists():
        return False
    manager = Path(f"/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service/cgroup.controllers")
    try:
        if not {"memory", "pids"} <= set(manager.read_text().split()):
            return False
    except OSError:
        return False
    try:
        probe = subprocess.run(
            ["systemctl", "--user", "is-system-running"],
            capture_output=True,
            timeout=5,
            env={**os.environ, "XDG_RUNTIME_DIR": runtime},
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.stdout.strip() in (b"running", b"degraded")


def enforcement(settings: Settings) -> Enforcement:
    """The limit enforcement this process gets: never a silent fallback to rlimits."""
    no_cgroups = root_can_create() if os.geteuid() == 0 else None
    if os.geteuid() == 0 and no_cgroups is None:
        return Enforcement("root-cgroup", f"per-execution memory and pids cgroups under {settings.cgroup_parent}")
    if settings.cgroup_delegate:
        parents = tuple(Path(path) for path in settings.cgroup_delegate)
        try:
            kinds = delegated_kinds(list(parents))
        except (ValueError, OSError) as exc:
            return Enforcement(
                "refuse", f"EXECUTIONER_CGROUP_DELEGATE={','.join(settings.cgroup_delegate)} is unusable: {exc}"
            )
        version = "cgroup v2" if kinds == ["v2"] else "cgroup v1 memory+pids"
        where = ", ".join(str(p) for p in parents)
        return Enforcement("delegated-cgroup", f"per-execution {version} cgroups under {where}", parents)
    if systemd_user_manager():
        return Enforcement("systemd-scope", "a transient systemd user scope per execution (MemoryMax, TasksMax)")
    if settings.allow_weak_limits:
        return Enforcement(
            "rlimit",
            "WEAK LIMITS (EXECUTIONER_ALLOW_WEAK_LIMITS=1): rlimits only; forked children and tmpfs files "
            "escape the memory limit",
        )
    who = f"running as root but {no_cgroups}," if no_cgroups else f"running as uid {os.geteuid()} without root,"
    return Enforcement(
        "refuse",
        f"{who} without a delegated cgroup or a systemd user manager, so memory and process limits cannot be enforced",
    )


def sandbox_memory_bytes(execution: Execution) -> int:
    """The sandbox's memory limit: the program's, the runner's overhead, and the input files (in the sandbox's
    memory twice: bubblewrap's copy and the one in the working directory)."""
    inputs = sum(len(file.content_base64) * 3 // 4 for file in execution.files)
    return execution.limits.memory_mb * 1024 * 1024 + RUNTIME_OVERHEAD_BYTES + 2 * inputs


def refusal_message(found: Enforcement) -> str:
    return f"refusing to run untrusted code: {found.detail}. To fix it: {WEAK_LIMITS_ADVICE}."


def follow_process(
    process: subprocess.Popen, runner: RunnerLines, deadline_seconds: float, until_envelope: bool = False
) -> tuple[bytes, bool]:
    """Feed the sandbox's stdout to `runner` as it arrives (live output) until it closes, killing the sandbox at its
    deadline; returns bubblewrap's stderr and whether the sandbox ended in time. `until_envelope`: stop at the
    runner's envelope (it has killed the program's processes already) and leave the sandbox's teardown to its owner."""
    assert process.stdout is not None and process.stderr is not None
    errors = bytearray()

    def read_stderr() -> None:
        with process.stderr:  # type: ignore[union-attr]
            errors.extend(process.stderr.read())  # type: ignore[union-attr]

    stderr_reader = threading.Thread(target=read_stderr, daemon=True)
    stderr_reader.start()
    overdue = threading.Event()

    def stop_overdue() -> None:
        overdue.set()
        process.kill()

    deadline = threading.Timer(deadline_seconds, stop_overdue)
    deadline.start()
    try:
        while piece := process.stdout.read1(65536):  # type: ignore[attr-defined]  # a BufferedReader
            runner.feed(piece)
            if until_envelope and runner.ended:
                return bytes(errors), True
        process.wait()
    finally:
        deadline.cancel()
    stderr_reader.join()
    return bytes(errors), not overdue.is_set()


class LocalBackend:
    name = "local"

    def __init__(self, settings: Settings):
        self.settings = settings
        self._processes: dict[str, subprocess.Popen] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self.pool: WarmPool | None = None

    def start_pool(self) -> None:
        """Keep warm sandboxes ready (EXECUTIONER_LOCAL_POOL_SIZE), where the limits can be set per job: not in a
        systemd scope, whose limits are fixed when it starts."""
        size = self.settings.local_pool_size
        size = self.settings.worker_concurrency if size is None else size
        if size == 0 or self.enforcement().mode in ("refuse", "systemd-scope") or self.pool is not None:
            return
        self.pool = WarmPool(size, self._start_warm)
        atexit.register(self.close)

    def close(self) -> None:
        """Destroy the waiting warm sandboxes (the worker's shutdown)."""
        if self.pool is not None:
            self.pool.close()

    def bwrap(self) -> str:
        path = shutil.which(self.settings.bwrap_path)
        if not path:
            raise SandboxUnavailable(
                f"bubblewrap ({self.settings.bwrap_path}) is not installed; refusing to run code without a sandbox"
            )
        return path

    def enforcement(self) -> Enforcement:
        return enforcement(self.settings)

    def check_seccomp(self) -> None:
        """Fail closed: no sandbox without its syscall filter."""
        try:
            filter_program()
        except SeccompUnavailable as exc:
            raise SandboxUnavailable(f"refusing to run code without the sandbox's syscall filter: {exc}") from exc

    def run(self, execution: Execution, output: OutputSink | None = None) -> Outcome:
        try:
            packages = prepared_packages(self.settings, execution.runtime)
        except RuntimeNotPrepared as exc:
            raise SandboxUnavailable(str(exc)) from None
        # Warm sandboxes have the default runtime (no packages bound); a runtime with packages starts cold.
        warm = self.pool.take() if self.pool and packages is None else None
        if warm is not None:
            outcome = self._run_warm(warm, execution, output)
            if outcome is not None:
                return outcome
        bwrap = self.bwrap()
        self.check_seccomp()
        found = self.enforcement()
        if not found.runs:
            raise SandboxUnavailable(refusal_message(found))
        memory_bytes = sandbox_memory_bytes(execution)
        with ExitStack() as descriptors:
            files = self._input_files(execution, descriptors)
            cgroup = self._create_cgroup(found, execution.id, memory_bytes)
            scope = memory_bytes if found.mode == "systemd-scope" else None
            try:
                outcome = self._run_sandbox(bwrap, files, execution, cgroup, scope, output)
                enforced = "cgroup" if cgroup is not None or scope is not None else "rlimit"
                return outcome.model_copy(update={"limits_enforced": enforced, "sandbox_start": "cold"})
            finally:
                if cgroup:
                    cgroup.remove()
                with self._lock:
                    self._processes.pop(execution.id, None)
                    self._cancelled.discard(execution.id)

    def _create_cgroup(self, found: Enforcement, name: str, memory_bytes: int) -> SandboxCgroup | None:
        """The sandbox's cgroups where the enforcement mode has them (None otherwise); never a silent fallback."""
        if found.mode == "root-cgroup":
            cgroup = SandboxCgroup.create(self.settings.cgroup_parent, name, memory_bytes, self.settings.max_processes)
            if cgroup is None:
                raise SandboxUnavailable(f"cannot create the execution's cgroups under {self.settings.cgroup_parent}")
            return cgroup
        if found.mode == "delegated-cgroup":
            try:
                return SandboxCgroup.create_delegated(
                    list(found.delegated), name, memory_bytes, self.settings.max_processes
                )
            except OSError as exc:
                raise SandboxUnavailable(
                    f"cannot create the execution's cgroup under {', '.join(map(str, found.delegated))}: {exc}"
                ) from exc
        return None

    def _start_warm(self) -> WarmSandbox:
        """A sandbox like the cold one, without its job: the runner waits for it on stdin (warm_job). Its cgroups
        allow the largest execution until the job brings its own limit."""
        bwrap = self.bwrap()
        self.check_seccomp()
        found = self.enforcement()
        if found.mode not in ("root-cgroup", "delegated-cgroup", "rlimit"):
            raise SandboxUnavailable(refusal_message(found))
        largest = self.settings.max_memory_mb * 1024 * 1024 + RUNTIME_OVERHEAD_BYTES
        with ExitStack() as descriptors:
            files = self._input_files(None, descriptors)
            fds = tuple(files.values())
            cgroup = self._create_cgroup(found, f"warm-{uuid.uuid4().hex}", largest)
            try:
                if cgroup is None:
                    process = self._spawn(self.command(bwrap, files, None, None), fds, stdin=subprocess.PIPE)
                else:
                    process = self._spawn_in_cgroup(
                        lambda gate: self.command(bwrap, files, None, cgroup, gate), cgroup, fds, stdin=subprocess.PIPE
                    )
            except BaseException:
                if cgroup:
                    cgroup.remove()
                raise
        return WarmSandbox(process, cgroup)

    def _run_warm(self, sandbox: WarmSandbox, execution: Execution, output: OutputSink | None) -> Outcome | None:
        """Run the execution in a warm sandbox, then destroy it; None when the sandbox was gone before it got the job
        (no code ran: the cold path serves the execution)."""
        memory_bytes = sandbox_memory_bytes(execution)
        process = sandbox.process
        assert process.stdin is not None
        try:
            try:  # the execution's own limit, before its code can run
                if sandbox.cgroup:
                    sandbox.cgroup.set_memory(memory_bytes)
                job = warm_job(
                    execution,
                    self.settings,
                    memory_rlimit=sandbox.cgroup is None,
                    max_processes=self.settings.max_processes,
                )
                process.stdin.write(job)
                process.stdin.close()
            except OSError as exc:
                log.warning("a warm sandbox was lost before %s reached it (%s); starting a cold one", execution.id, exc)
                return None
            outcome = self._follow(process, execution, sandbox.cgroup, None, output, until_envelope=True)
            enforced = "cgroup" if sandbox.cgroup is not None else "rlimit"
            return outcome.model_copy(update={"limits_enforced": enforced, "sandbox_start": "warm"})
        finally:
            if self.pool is not None:
                self.pool.retire(sandbox)  # destroyed off the execution's path: its result need not wait for it
            else:
                sandbox.destroy()
            with self._lock:
                self._processes.pop(execution.id, None)
                self._cancelled.discard(execution.id)

    def cancel(self, execution_id: str) -> None:
        with self._lock:
            self._cancelled.add(execution_id)
            process = self._processes.get(execution_id)
        if process and process.poll() is None:
            process.kill()  # bwrap --die-with-parent takes the whole sandbox down with it

    def _spawn(self, argv: list[str], pass_fds: tuple[int, ...], stdin: int = subprocess.DEVNULL) -> subprocess.Popen:
        return subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=pass_fds,
            cwd="/",
            env={"PATH": "/usr/bin:/bin"},
        )

    def _spawn_in_cgroup(
        self, command, cgroup: SandboxCgroup, pass_fds: tuple[int, ...], stdin: int = subprocess.DEVNULL
    ) -> subprocess.Popen:
        """Start bubblewrap held at --block-fd, move its sandbox process into the cgroups, then release it,
        so everything the sandbox ever runs is inside them. `command(gate)` gives the command line."""
        info_read, info_write = os.pipe()
        block_read, block_write = os.pipe()
        try:
            process = self._spawn(
                command((info_write, block_read)), pass_fds=(*pass_fds, info_write, block_read), stdin=stdin
            )
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

    def _input_files(self, execution: Execution | None, descriptors: ExitStack) -> dict[str, int]:
        """In-memory files (memfds) that bubblewrap copies into the sandbox, by their path there: code, stdin, the
        input files and their manifest, the runner; the seccomp program under "seccomp". Nothing of the execution
        touches the host's disk, and no other user can read it. A warm sandbox (no execution yet) gets the runner
        only."""
        files = {"seccomp": filter_fd()}
        descriptors.callback(os.close, files["seccomp"])
        inputs = [(CODE_PATH, execution.code.encode()), (STDIN_PATH, execution.stdin.encode())] if execution else []
        if execution and execution.files:
            inputs += [(input_file_source(i), decoded(file)) for i, file in enumerate(execution.files)]
            inputs.append((FILES_MANIFEST_PATH, files_manifest(execution)))
        for path, content in (*inputs, (RUNNER_PATH, runner_source().read_bytes())):
            fd = os.memfd_create(os.path.basename(path), os.MFD_CLOEXEC)
            descriptors.callback(os.close, fd)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.lseek(fd, 0, os.SEEK_SET)
            files[path] = fd
        return files

    def command(
        self,
        bwrap: str,
        files: dict[str, int],
        execution: Execution | None,
        cgroup: SandboxCgroup | None,
        gate: tuple[int, int] | None = None,
        scoped: bool = False,
    ) -> list[str]:
        """The whole command line; `gate` (info fd, block fd) holds the sandbox until it is in its cgroups. Without
        an execution, a warm sandbox's: its runner waits for the job on stdin."""
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
            # bubblewrap's --size applies only to --tmpfs, not to --dev's own tmpfs: /dev/shm gets a bounded tmpfs
            # of its own and /dev itself is made read-only, so neither can grow into host RAM.
            "--size", str(s.shm_size_mb * 1024 * 1024), "--perms", "1777", "--tmpfs", "/dev/shm",
            "--remount-ro", "/dev",
            "--size", str(s.tmp_size_mb * 1024 * 1024), "--tmpfs", "/tmp",
        ]
        # fmt: on
        for path, fd in files.items():
            if path != "seccomp":
                argv += ["--perms", "0444", "--file", str(fd), path]
        if execution is not None and (packages := prepared_packages(s, execution.runtime)):
            argv += ["--ro-bind", str(packages), RUNTIME_PACKAGES_PATH]
        if execution is None:  # a warm sandbox's program gets its code later, on a descriptor of its own
            argv += ["--symlink", f"/proc/self/fd/{CODE_FD}", CODE_PATH]
        # bubblewrap loads the filter last, after its own mounts, just before it starts the runner
        argv += ["--seccomp", str(files["seccomp"])]
        argv += ["--remount-ro", "/", "--chdir", "/tmp", s.sandbox_python, "-I", "-S", RUNNER_PATH]
        if execution is None:
            return [*argv, JOB_ON_STDIN]
        limited = cgroup is not None or scoped
        argv += runner_args(execution, s, memory_rlimit=not limited, max_processes=s.max_processes)
        return argv

    def _systemd_scope(self, memory_bytes: int) -> list[str]:
        """The transient user scope the sandbox starts in: it holds bubblewrap from its first instruction."""
        s = self.settings
        # fmt: off
        return [
            "systemd-run", "--user", "--scope", "--quiet", "--collect",
            "-p", f"MemoryMax={memory_bytes}", "-p", "MemorySwapMax=0", "-p", f"TasksMax={s.max_processes}", "--",
        ]
        # fmt: on

    def _run_sandbox(
        self,
        bwrap: str,
        files: dict[str, int],
        execution: Execution,
        cgroup: SandboxCgroup | None,
        scope_memory: int | None = None,
        output: OutputSink | None = None,
    ) -> Outcome:
        fds = tuple(files.values())
        if scope_memory is not None:
            argv = self.command(bwrap, files, execution, None, scoped=True)
            process = self._spawn(self._systemd_scope(scope_memory) + argv, fds)
        elif cgroup is None:
            process = self._spawn(self.command(bwrap, files, execution, None), fds)
        else:
            process = self._spawn_in_cgroup(
                lambda gate: self.command(bwrap, files, execution, cgroup, gate), cgroup, fds
            )
        return self._follow(process, execution, cgroup, scope_memory, output)

    def _follow(
        self,
        process: subprocess.Popen,
        execution: Execution,
        cgroup: SandboxCgroup | None,
        scope_memory: int | None,
        output: OutputSink | None,
        until_envelope: bool = False,
    ) -> Outcome:
        """Follow a started sandbox to its end (or its envelope) and read its outcome."""
        with self._lock:
            self._processes[execution.id] = process
            cancelled_early = execution.id in self._cancelled
        if cancelled_early:
            process.kill()
        runner = RunnerLines(output)
        stderr, in_time = follow_process(
            process, runner, self.settings.sandbox_deadline(execution.limits), until_envelope
        )
        if not in_time:
            return Outcome.failure(Status.timed_out, "the sandbox did not stop at its deadline and was killed")
        if execution.id in self._cancelled:
            return Outcome.cancelled()
        try:
            outcome = parse_envelope(runner.text())
        except EnvelopeError as exc:
            if (cgroup and cgroup.oom_kills() > 0) or (scope_memory is not None and process.returncode == -9):
                return Outcome.failure(Status.memory_exceeded, memory_exceeded_reason(execution.limits.memory_mb))
            reason = stderr.decode("utf-8", errors="replace").strip().splitlines()
            detail = f" ({reason[-1]})" if reason else ""
            log.warning("sandbox for %s failed: exit %s%s", execution.id, process.returncode, detail)
            return Outcome.failure(Status.error, f"{exc}{detail}")
        # The cgroup's OOM counter is read here, not bound into the sandbox (its path would show inside); the runner
        # reads it itself only in a container. Any OOM kill in the sandbox means the program outgrew its memory.
        if cgroup and outcome.status in (Status.succeeded, Status.failed) and cgroup.oom_kills() > 0:
            return outcome.model_copy(
                update={"status": Status.memory_exceeded, "error": memory_exceeded_reason(execution.limits.memory_mb)}
            )
        return outcome
