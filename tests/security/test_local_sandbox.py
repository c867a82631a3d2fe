"""The local sandbox's own protections: its syscall filter, core dumps, and what of the host it lets show.

Every attack runs inside a sandbox, through the real API, worker and bubblewrap (the `stack` fixture); the core
dump case runs on every backend (`run_code`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from executioner.worker.backends.seccomp import DENIED_SYSCALL_NUMBERS, DENIED_SYSCALLS, ENOSYS_SYSCALLS
from helpers.programs import new_marker, program
from helpers.stack import REPO, run_program

# x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl): the sandbox calls them by number, as an attacker would.
X86_64_SYSCALLS = {
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "bpf": 321, "perf_event_open": 298,
    "userfaultfd": 323, "keyctl": 250, "add_key": 248, "request_key": 249, "mount": 165, "umount2": 166,
    "pivot_root": 155, "chroot": 161, "move_mount": 429, "open_tree": 428, "fsopen": 430, "fsconfig": 431,
    "fsmount": 432, "fspick": 433, "mount_setattr": 442, "unshare": 272, "setns": 308, "ptrace": 101,
    "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "pidfd_getfd": 438, "open_by_handle_at": 304,
    "name_to_handle_at": 303, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168, "settimeofday": 164, "clock_settime": 227,
    "clock_adjtime": 305, "adjtimex": 159, "acct": 163, "quotactl": 179, "quotactl_fd": 443, "syslog": 103,
    "ioperm": 173, "iopl": 172, "vhangup": 153, "lookup_dcookie": 212, "fanotify_init": 300, "nfsservctl": 180,
    "uselib": 134, "ustat": 136, "sysfs": 139, "_sysctl": 156, "create_module": 174, "get_kernel_syms": 177,
    "query_module": 178, "mbind": 237, "set_mempolicy": 238, "migrate_pages": 256, "move_pages": 279,
    "open_tree_attr": 467, "clone3": 435,
}  # fmt: skip
CLONE, PERSONALITY = 56, 135


@pytest.fixture
def run_local(stack):
    with httpx.Client(base_url=stack.url, timeout=120) as client:

        def run(code: str, stdin: str = "", timeout: float = 10, memory_mb: int = 128) -> dict:
            return run_program(client, code, stdin, timeout, memory_mb)

        yield run


SYSCALL_PROBE = program(
    """
    import ctypes, errno, json, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    def call(number, *args):
        ctypes.set_errno(0)
        result = libc.syscall(ctypes.c_long(number), *(ctypes.c_ulong(a) for a in args))
        if result == 0 and number == 56:  # a clone that worked: this is the child
            os._exit(0)
        return "ok" if result >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    tables = json.loads(sys.stdin.read())
    answers = {name: call(number, 1, 0, 0, 0, 0, 0) for name, number in tables["calls"].items()}
    c = tables["const"]
    SIGCHLD = 17
    for flag, value in tables["clone_flags"].items():
        answers["clone+" + flag] = call(c["clone"], value | SIGCHLD, 0, 0, 0, 0)
    answers["personality(ADDR_NO_RANDOMIZE)"] = call(c["personality"], 0x0040000)
    answers["personality(READ_IMPLIES_EXEC)"] = call(c["personality"], 0x0400000)
    answers["personality(query)"] = call(c["personality"], 0xFFFFFFFF)
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    answers["Seccomp"] = status["Seccomp"].strip()
    print(json.dumps(answers))
    """
)


def test_every_denied_syscall_answers_eperm(run_local):
    assert platform.machine() == "x86_64", "the probe calls syscalls by their x86_64 numbers"
    profile = set(DENIED_SYSCALLS) | set(DENIED_SYSCALL_NUMBERS) | set(ENOSYS_SYSCALLS)
    assert profile == set(X86_64_SYSCALLS), "every syscall the profile denies is probed here, and nothing else"
    from executioner.worker.backends.seccomp import CLONE_NAMESPACE_FLAGS

    tables = {
        "calls": X86_64_SYSCALLS,
        "clone_flags": CLONE_NAMESPACE_FLAGS,
        "const": {"clone": CLONE, "personality": PERSONALITY},
    }
    doc = run_local(SYSCALL_PROBE, stdin=json.dumps(tables))
    assert doc["status"] == "succeeded", doc
    answers = json.loads(doc["stdout"])
    assert answers.pop("Seccomp") == "2"  # a filter is loaded
    assert answers.pop("personality(query)") == "ok"  # asking for the current persona stays allowed
    # clone3 answers ENOSYS so the C library falls back to clone, whose flags the filter can read
    assert answers.pop("clone3") == "ENOSYS"
    refused = {name: answer for name, answer in answers.items() if answer != "EPERM"}
    assert not refused, refused


def test_ordinary_programs_still_work(run_local):
    doc = run_local(
        program(
            """
            import multiprocessing, sqlite3, subprocess, sys, threading, concurrent.futures

            def square(x):
                return x * x

            if __name__ == "__main__":
                with multiprocessing.Pool(2) as pool:
                    print("multiprocessing", sum(pool.map(square, range(10))))
                print("subprocess", subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True,
                                                   text=True, check=True).stdout.strip())
                with concurrent.futures.ThreadPoolExecutor(4) as threads:
                    print("threads", sum(threads.map(square, range(10))))
                db = sqlite3.connect("/tmp/test.db")
                db.execute("create table t (x)")
                db.executemany("insert into t values (?)", [(i,) for i in range(10)])
                print("sqlite", db.execute("select sum(x) from t").fetchone()[0])
                lock, seen = threading.Lock(), []
                workers = [threading.Thread(target=lambda: (lock.acquire(), seen.append(1), lock.release()))
                           for _ in range(8)]
                for w in workers: w.start()
                for w in workers: w.join()
                print("joined", len(seen))
            """
        ),
        timeout=20,
    )
    assert doc["status"] == "succeeded", doc
    assert doc["stdout"].splitlines() == [
        "multiprocessing 285",
        "subprocess 42",
        "threads 285",
        "sqlite 45",
        "joined 8",
    ]


CORE_LIMIT_PROBE = program(
    """
    import ctypes, errno, json, os, resource
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    def call(number, *args):
        result = libc.syscall(ctypes.c_long(number), *(ctypes.c_ulong(a) for a in args))
        return "ok" if result >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    answers = {"limit": list(resource.getrlimit(resource.RLIMIT_CORE))}
    zero, current, files = (ctypes.c_ulong * 2)(0, 0), (ctypes.c_ulong * 2)(), (ctypes.c_ulong * 2)(64, 64)
    answers["setrlimit(RLIMIT_CORE, 0)"] = call(160, 4, ctypes.addressof(zero))
    answers["prlimit64(RLIMIT_CORE, 0)"] = call(302, 0, 4, ctypes.addressof(zero), 0)
    child = os.fork()
    if child == 0:  # in a child: a filter may kill the caller for a foreign ABI
        os._exit({"ok": 0, "EPERM": 1, "ENOSYS": 2}.get(
            call(0x40000000 | 302, 0, 4, ctypes.addressof(zero), 0), 3))
    status = os.waitpid(child, 0)[1]
    answers["prlimit64(RLIMIT_CORE, 0) by x32 number"] = (
        "SIGSYS" if os.WIFSIGNALED(status) and os.WTERMSIG(status) == 31
        else ["ok", "EPERM", "ENOSYS", "other"][os.WEXITSTATUS(status)])
    answers["prlimit64(RLIMIT_CORE, read)"] = call(302, 0, 4, 0, ctypes.addressof(current))
    answers["prlimit64(RLIMIT_NOFILE, 64)"] = call(302, 0, 7, ctypes.addressof(files), 0)
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        answers["resource.setrlimit"] = "ok"
    except (OSError, ValueError) as e:
        answers["resource.setrlimit"] = type(e).__name__
    answers["limit after"] = list(resource.getrlimit(resource.RLIMIT_CORE))
    print(json.dumps(answers))
    """
)


def test_the_core_limit_cannot_be_lowered(run_code):
    """RLIMIT_CORE 0 would let a crash start a piped core_pattern's helper: it stays 1, on every backend."""
    assert platform.machine() == "x86_64", "the probe calls syscalls by their x86_64 numbers"
    doc = run_code(CORE_LIMIT_PROBE)
    assert doc["status"] == "succeeded", doc
    answers = json.loads(doc["stdout"])
    assert answers["limit"] == answers["limit after"] == [1, 1]
    assert answers["setrlimit(RLIMIT_CORE, 0)"] == answers["prlimit64(RLIMIT_CORE, 0)"] == "EPERM"
    # by its x32 number: the local filter kills a foreign ABI's caller, the runner's filter answers EPERM
    assert answers["prlimit64(RLIMIT_CORE, 0) by x32 number"] in ("SIGSYS", "EPERM"), answers
    assert answers["resource.setrlimit"] in ("OSError", "ValueError")  # CPython reports EPERM as ValueError
    # reading it and changing other limits stay allowed
    assert answers["prlimit64(RLIMIT_CORE, read)"] == answers["prlimit64(RLIMIT_NOFILE, 64)"] == "ok"


@pytest.fixture
def piped_core_pattern(tmp_path):
    """The host pipes core dumps to a helper, as systemd-coredump and apport do; the helper records each call."""
    pattern_file = Path("/proc/sys/kernel/core_pattern")
    calls = tmp_path / "calls"
    calls.touch(mode=0o666)
    helper = tmp_path / "core-helper"
    helper.write_text(f'#!/bin/sh\necho "$1 $2" >> {calls}\nexec cat > /dev/null\n')
    helper.chmod(0o755)
    tmp_path.chmod(0o755)
    previous = pattern_file.read_text()
    pattern_file.write_text(f"|{helper} %P %e")
    try:
        yield calls
    finally:
        pattern_file.write_text(previous)


def test_a_crash_starts_no_core_dump_helper(run_code, piped_core_pattern):
    """On both backends: the runner sets RLIMIT_CORE 1 in every sandbox (pods share the node's kernel and its
    core_pattern)."""
    marker = new_marker("core")[:15]  # the crashing process's name (comm): 15 characters at most
    doc = run_code(
        program(
            f"""
            import ctypes, os, subprocess, sys
            libc = ctypes.CDLL(None)
            crash = "import ctypes; ctypes.CDLL(None).prctl(15, {marker.encode()!r}); ctypes.string_at(0)"
            child = subprocess.run([sys.executable, "-c", crash])
            print("child", child.returncode, flush=True)
            libc.prctl(15, {marker.encode()!r})
            os.abort()
            """
        )
    )
    assert doc["status"] == "failed", doc
    assert doc["exit_code"] == 134 and "SIGABRT" in doc["error"], doc
    assert doc["stdout"] == "child -11\n"
    time.sleep(1)  # the helper would have started while the crashing process was still being torn down
    assert marker not in piped_core_pattern.read_text()


def test_mounts_show_no_host_path(run_local):
    doc = run_local("print(open('/proc/self/mountinfo').read())")
    assert doc["status"] == "succeeded", doc
    roots = {line.split()[3] for line in doc["stdout"].splitlines() if line.strip()}
    mount_points = {line.split()[4] for line in doc["stdout"].splitlines() if line.strip()}
    # every mount's source is the root of its own filesystem, a device node, the host's /usr, or bubblewrap's root
    assert roots <= {"/", "/usr", "/newroot"} | {
        f"/{name}" for name in ("null", "zero", "full", "random", "urandom", "tty")
    } | {f"/{top}" for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32")}, roots
    assert not any("executioner" in point or point.startswith("/tmp/") for point in mount_points), mount_points
    assert "executioner-" not in doc["stdout"] and "cgroup" not in doc["stdout"]


def files_containing(top: str, secret: bytes, depth: int = 4) -> list[str]:
    found = []
    for root, dirs, files in os.walk(top):
        if root.count(os.sep) >= depth:
            dirs.clear()
        for name in files:
            path = os.path.join(root, name)
            try:
                if os.path.isfile(path) and os.path.getsize(path) < 4 * 1024 * 1024:
                    with open(path, "rb") as f:
                        if secret in f.read():
                            found.append(path)
            except OSError:
                pass
    return found


def test_input_files_never_sit_in_the_hosts_tmp(stack):
    """Code and stdin reach the sandbox through in-memory files: while it runs, no file in the host's /tmp holds
    them (they used to sit there, readable by every local user)."""
    secret = new_marker("stdin-secret")
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        body = {"code": "import time\ntime.sleep(3)\nprint('done')", "stdin": secret, "limits": {"timeout_seconds": 10}}
        doc = client.post("/v1/executions", json=body).json()
        while doc["status"] == "queued":
            time.sleep(0.05)
            doc = client.get(f"/v1/executions/{doc['id']}").json()
        time.sleep(0.5)  # the sandbox is starting or running: its input is wherever it is going to be
        found = files_containing("/tmp", secret.encode())
        while doc["status"] in ("queued", "running"):
            doc = client.get(f"/v1/executions/{doc['id']}", params={"wait": 30}).json()
    assert doc["status"] == "succeeded" and doc["stdout"] == "done\n", doc
    assert found == [], found


# Read-only cgroup mounts, as in most containers, in a mount namespace of this test's own.
WITHOUT_WRITABLE_CGROUPS = (
    "awk '$5 ~ \"^/sys/fs/cgroup\" {print $5}' /proc/self/mountinfo | "
    'while read -r m; do mount -o remount,bind,ro "$m"; done; exec "$@"'
)


def test_a_root_worker_without_cgroups_refuses_rather_than_degrading(tmp_path):
    assert os.geteuid() == 0, "this case is about a root worker"
    source = tmp_path / "main.py"
    source.write_text("print('ran')")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
    command = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", WITHOUT_WRITABLE_CGROUPS, "sh"]
    executioner = [str(REPO / ".venv" / "bin" / "executioner"), "run", "--json", str(source)]
    refused = subprocess.run(command + executioner, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2, refused
    assert "running as root but /sys/fs/cgroup" in refused.stderr, refused.stderr
    weak = subprocess.run(
        command + executioner,
        env={**env, "EXECUTIONER_ALLOW_WEAK_LIMITS": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    doc = json.loads(weak.stdout)
    assert doc["status"] == "succeeded" and doc["stdout"] == "ran\n", doc
    assert doc["limits_enforced"] == "rlimit"
    assert "WEAK LIMITS" in weak.stderr  # said at start, loudly


def test_doctor_reports_the_syscall_filter():
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
    doctor = subprocess.run(
        [str(REPO / ".venv" / "bin" / "executioner"), "doctor"], env=env, capture_output=True, text=True, timeout=60
    )
    assert doctor.returncode == 0, doctor
    assert "syscall filter: seccomp deny-list (" in doctor.stdout
