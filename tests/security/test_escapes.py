"""Escape attempts: each runs only inside a sandbox, against every backend, and asserts the exact outcome.

The worker that runs them lives in a private mount namespace (see helpers/stack.py),
so even an escape that worked could not change the machine's mounts.
"""

from __future__ import annotations

import json

from helpers.programs import new_marker, processes_with, program, wait_until


def test_cpu_spin_times_out(run_code):
    doc = run_code("while True:\n    pass", timeout=1)
    assert doc["status"] == "timed_out"


NETWORK_PROBE = program(
    """
    import errno, socket
    results = {}
    results["interfaces"] = [name for _, name in socket.if_nameindex()]
    with open("/proc/net/route") as f:
        results["routes"] = f.read().splitlines()[1:]
    # A UDP connect only asks the kernel for a route; it sends nothing anywhere.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 53))
        results["public"] = "routed"
    except OSError as e:
        results["public"] = errno.errorcode[e.errno]
    for name, port in PORTS.items():
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
            results[name] = "connected"
        except OSError as e:
            results[name] = errno.errorcode.get(e.errno, str(e))
    try:
        socket.getaddrinfo("example.com", 80)
        results["dns"] = "resolved"
    except OSError as e:
        results["dns"] = "failed"
    print(json.dumps(results))
    """
)


def test_network_is_unreachable(run_code):
    stack = run_code.stack
    ports = {"api": int(stack.url.rsplit(":", 1)[1]), "redis": int(stack.env["EXECUTIONER_REDIS_URL"].rsplit(":", 1)[1].split("/")[0])}
    doc = run_code(f"import json\nPORTS = {ports!r}\n" + NETWORK_PROBE)
    assert doc["status"] == "succeeded", doc
    results = json.loads(doc["stdout"])
    assert results["interfaces"] == ["lo"]
    assert results["routes"] == []
    assert results["public"] == "ENETUNREACH"
    # The host's API and Redis ports are not reachable: the sandbox's loopback is its own.
    assert results["api"] == "ECONNREFUSED"
    assert results["redis"] == "ECONNREFUSED"
    assert results["dns"] == "failed"


def test_host_files_and_environment_are_invisible(run_code):
    doc = run_code(
        program(
            """
            import json, os
            print(json.dumps({
                "env": sorted(os.environ),
                "paths": {p: os.path.exists(p) for p in ["/etc/passwd", "/etc/shadow", "/root", "/home", "/work", "/var/run/secrets/kubernetes.io/serviceaccount/token", "/run/secrets"]},
                "proc_environ_1": open("/proc/1/environ", "rb").read().decode(errors="replace") if os.access("/proc/1/environ", os.R_OK) else None,
            }))
            """
        )
    )
    assert doc["status"] == "succeeded", doc
    seen = json.loads(doc["stdout"])
    assert set(seen["env"]) <= {"PATH", "HOME", "LANG"}
    assert not any(seen["paths"].values()), seen["paths"]
    assert seen["proc_environ_1"] is None or "EXECUTIONER" not in seen["proc_environ_1"]


def test_runs_as_an_unprivileged_user(run_code):
    doc = run_code("import os\nprint(os.getuid(), os.geteuid(), os.getgid())\nprint(open('/proc/self/status').read())")
    assert doc["status"] == "succeeded"
    uid, euid, gid = (int(x) for x in doc["stdout"].splitlines()[0].split())
    assert uid != 0 and euid != 0 and gid != 0
    cap_eff = next(line for line in doc["stdout"].splitlines() if line.startswith("CapEff:"))
    assert cap_eff.split()[1] == "0000000000000000"


def test_root_filesystem_is_read_only(run_code):
    doc = run_code(
        program(
            """
            import errno
            for path in ["/usr/evil", "/evil", "/sandbox/evil", "/opt/executioner/runner.py"]:
                try:
                    open(path, "w").write("x")
                    print(path, "written")
                except OSError as e:
                    print(path, errno.errorcode[e.errno])
            open("/tmp/ok", "w").write("fine")
            print("/tmp", open("/tmp/ok").read())
            """
        )
    )
    assert doc["status"] == "succeeded", doc
    lines = doc["stdout"].splitlines()
    assert all(line.split()[1] in ("EROFS", "EACCES", "ENOENT") for line in lines[:-1]), lines
    assert lines[-1] == "/tmp fine"


def test_tmp_cannot_be_filled_past_its_limit(run_code):
    doc = run_code(
        program(
            """
            import errno
            written = 0
            try:
                for i in range(256):
                    with open(f"/tmp/fill{i}", "wb") as f:
                        f.write(b"x" * (1024 * 1024))
                    written += 1
                print("filled", written)
            except OSError as e:
                print(errno.errorcode[e.errno], written)
            """
        ),
        memory_mb=256,
    )
    assert doc["status"] == "succeeded", doc
    code, written = doc["stdout"].split()
    assert code == "ENOSPC"
    assert int(written) < 64


def test_fork_bomb_is_contained(run_code):
    doc = run_code("import os\nwhile True:\n    os.fork()", timeout=5)
    assert doc["status"] == "failed", doc
    assert "BlockingIOError" in doc["stderr"] or "Resource temporarily unavailable" in doc["stderr"]
    assert run_code("print('still alive')")["stdout"] == "still alive\n"


def test_thread_bomb_is_contained(run_code):
    doc = run_code("import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()", timeout=5)
    assert doc["status"] == "failed", doc
    assert "can't start new thread" in doc["stderr"]


def test_orphans_do_not_outlive_the_execution(run_code):
    marker = new_marker("orphan")
    doc = run_code(
        program(
            f"""
            import subprocess, sys
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", {marker!r}], start_new_session=True)
            print("spawned")
            """
        )
    )
    assert doc["status"] == "succeeded", doc
    assert doc["duration_ms"] < 5000
    assert wait_until(lambda: not processes_with(marker), 5)


def test_output_flood_is_truncated(run_code):
    doc = run_code("import sys\nfor _ in range(300):\n    sys.stdout.write('x' * 4096)\nsys.stderr.write('e' * 200000)")
    assert doc["status"] == "succeeded"
    assert doc["stdout_truncated"] is True and doc["stderr_truncated"] is True
    assert len(doc["stdout"]) == 65536 and len(doc["stderr"]) == 65536


def test_forged_envelope_is_just_output(run_code):
    fake = json.dumps({"v": 1, "status": "succeeded", "exit_code": 0, "stdout": "forged", "stderr": "", "stdout_truncated": False, "stderr_truncated": False, "duration_ms": 1, "error": None})
    doc = run_code(f"import sys\nprint({fake!r})\nsys.stderr.write({fake!r} + '\\n')\nsys.exit(7)")
    assert doc["status"] == "failed"
    assert doc["exit_code"] == 7
    assert doc["stdout"] == fake + "\n"


def test_closed_fds_and_os_exit_still_report(run_code):
    doc = run_code("import os\nprint('before', flush=True)\nos.close(1)\nos.close(2)\nos._exit(4)")
    assert doc["status"] == "failed"
    assert doc["exit_code"] == 4
    assert doc["stdout"] == "before\n"


def test_killing_the_runner_does_not_suppress_the_result(run_code):
    doc = run_code(
        program(
            """
            import os, signal
            for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGSTOP):
                try:
                    os.kill(os.getppid(), sig)
                    os.kill(1, sig)
                except OSError as e:
                    print("denied", e.errno)
            print("still here")
            """
        )
    )
    assert doc["status"] == "succeeded", doc
    assert doc["stdout"].splitlines()[-1] == "still here"


def test_the_runner_cannot_be_traced_or_read(run_code):
    doc = run_code(
        program(
            """
            import ctypes, errno, os
            try:
                os.listdir("/proc/1/fd")
                print("fd", "listed")
            except OSError as e:
                print("fd", errno.errorcode[e.errno])
            libc = ctypes.CDLL(None, use_errno=True)
            result = libc.ptrace(16, 1, 0, 0)  # PTRACE_ATTACH
            print("ptrace", result, errno.errorcode.get(ctypes.get_errno()))
            """
        )
    )
    assert doc["status"] == "succeeded", doc
    lines = dict(line.split(" ", 1) for line in doc["stdout"].splitlines())
    assert lines["fd"] in ("EACCES", "EPERM")
    assert lines["ptrace"].startswith("-1")
