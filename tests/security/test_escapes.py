"""Escape attempts: each runs only inside a sandbox, against every backend, and asserts the exact outcome. The
filesystem, network and process escapes run in every runtime too (`every_runtime`): a runtime's packages change
what the sandbox holds.

The worker that runs them lives in a private mount namespace (see helpers/stack.py),
so even an escape that worked could not change the machine's mounts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.programs import new_marker, processes_with, program, wait_until


def test_cpu_spin_times_out(run_code):
    doc = run_code("while True:\n    pass", timeout=1)
    assert doc["status"] == "timed_out"


LOCAL_NETWORK_PROBE = program(
    """
    import errno, json, socket, sys
    ports = json.loads(sys.stdin.read())
    results = {"interfaces": [name for _, name in socket.if_nameindex()]}
    with open("/proc/net/route") as f:
        results["routes"] = f.read().splitlines()[1:]
    # UDP connect only asks the kernel for a route: nothing is sent anywhere.
    for name, host in [("public", "198.51.100.1"), ("metadata", "169.254.169.254"), ("kubernetes_api", "10.96.0.1")]:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((host, 443))
            results[name] = "routed"
        except OSError as e:
            results[name] = errno.errorcode[e.errno]
    for name, port in ports.items():
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
    except OSError:
        results["dns"] = "failed"
    print(json.dumps(results))
    """
)

# In a cluster the pod has an interface and routes; the deny-all NetworkPolicy is what blocks.
# Every target below answers when the policy is absent (tests/cluster proves that for the same probe).
CLUSTER_NETWORK_PROBE = program(
    """
    import json, socket, sys
    targets = json.loads(sys.stdin.read())
    with open("/proc/net/route") as f:
        gateway = next((socket.inet_ntoa(bytes.fromhex(line.split()[2])[::-1]) for line in f.read().splitlines()[1:]
                        if line.split()[1] == "00000000"), None)
    if gateway:
        targets["gateway_api_server"] = [gateway, 6443]
    results = {}
    for name, (host, port) in targets.items():
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect((host, port))
            results[name] = "connected"
        except socket.timeout:
            results[name] = "timeout"
        except OSError as e:
            results[name] = e.__class__.__name__
    try:
        socket.getaddrinfo("example.com", 80)
        results["dns"] = "resolved"
    except OSError:
        results["dns"] = "failed"
    print(json.dumps(results))
    """
)


@pytest.mark.every_runtime
def test_network_is_unreachable(run_code):
    stack = run_code.stack
    api_port = int(stack.url.rsplit(":", 1)[1])
    redis_port = int(stack.env["EXECUTIONER_REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    if stack.backend == "local":
        doc = run_code(LOCAL_NETWORK_PROBE, stdin=json.dumps({"api": api_port, "redis": redis_port}))
        assert doc["status"] == "succeeded", doc
        results = json.loads(doc["stdout"])
        assert results["interfaces"] == ["lo"]
        assert results["routes"] == []
        assert results["public"] == results["metadata"] == results["kubernetes_api"] == "ENETUNREACH"
        # The host's API and Redis are not reachable: the sandbox's loopback is its own.
        assert results["api"] == results["redis"] == "ECONNREFUSED"
        assert results["dns"] == "failed"
        return
    from cluster import harness

    node_ip = harness.kubectl_json("get", "nodes", kubeconfig=stack.kubeconfig)["items"][0]["status"]["addresses"][0][
        "address"
    ]
    targets = {
        "public": ["198.51.100.1", 80],
        "metadata": ["169.254.169.254", 80],
        "kubernetes_api_service": ["10.96.0.1", 443],
        "node_api_server": [node_ip, 6443],
        "node_api": [node_ip, api_port],
        "node_redis": [node_ip, redis_port],
    }
    doc = run_code(CLUSTER_NETWORK_PROBE, stdin=json.dumps(targets), timeout=30)
    assert doc["status"] == "succeeded", doc
    results = json.loads(doc["stdout"])
    assert results.pop("dns") == "failed"
    assert "gateway_api_server" in results
    assert all(outcome != "connected" for outcome in results.values()), results


NAME_LOOKUPS = program(
    """
    import socket
    for host in ("example.com", "kubernetes.default.svc"):
        try:
            socket.getaddrinfo(host, 80)
            print(host, "resolved")
        except socket.gaierror as e:
            print(host, type(e).__name__)
    try:
        with open("/etc/resolv.conf") as f:
            print("nameservers", [line.split()[1] for line in f if line.startswith("nameserver")])
    except OSError:
        print("nameservers", [])
    """
)


def test_name_resolution_fails_at_once(run_code):
    """No name server answers a sandbox, and none is waited on: the lookups fail well within a time limit they
    would otherwise run out (on Kubernetes, DNS packets the deny-all policy drops each take seconds to give up on)."""
    doc = run_code(NAME_LOOKUPS, timeout=20)
    assert doc["status"] == "succeeded", doc
    lookups, nameservers = doc["stdout"].rsplit("nameservers ", 1)
    assert lookups == "example.com gaierror\nkubernetes.default.svc gaierror\n"
    if run_code.stack.backend == "kubernetes":
        # the pod's only name server is its own loopback: no query leaves the pod
        assert nameservers == "['127.0.0.1']\n"


@pytest.fixture
def host_canary(tmp_path):
    """A file only the host has, in places a leaky sandbox would show it."""
    name, secret = new_marker("canary"), new_marker("secret")
    paths = [tmp_path / name, Path("/root") / f".{name}", Path("/tmp") / name]
    for path in paths:
        path.write_text(secret)
    yield secret, paths
    for path in paths:
        path.unlink(missing_ok=True)


@pytest.mark.every_runtime
def test_host_files_and_environment_are_invisible(run_code, host_canary):
    secret, paths = host_canary
    doc = run_code(
        program(
            """
            import json, os, sys
            paths = json.loads(sys.stdin.read())
            def readable(path):
                try:
                    open(path, "rb").read(1)
                    return True
                except OSError:
                    return False
            print(json.dumps({
                "env": sorted(os.environ),
                "visible": {p: os.path.exists(p) for p in paths},
                "readable": {p: readable(p) for p in ["/etc/shadow", "/proc/1/environ", "/proc/1/mem"]},
            }))
            """
        ),
        stdin=json.dumps(
            [str(p) for p in paths]
            + [
                "/work",
                "/var/lib/executioner-cluster",
                "/run/executioner-cluster",
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
                "/root/.cache",
            ]
        ),
    )
    assert doc["status"] == "succeeded", doc
    seen = json.loads(doc["stdout"])
    # a runtime with packages adds matplotlib's and the thread pools' settings (the sandbox's own paths and numbers)
    packages = {"MPLBACKEND", "MPLCONFIGDIR", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"}
    allowed = {"PATH", "HOME", "LANG"} | (packages if run_code.runtime != "python" else set())
    assert set(seen["env"]) <= allowed
    assert not any(seen["visible"].values()), seen["visible"]
    assert not any(seen["readable"].values()), seen["readable"]
    assert secret not in doc["stdout"]


def test_runs_as_an_unprivileged_user(run_code):
    doc = run_code("import os\nprint(os.getuid(), os.geteuid(), os.getgid())\nprint(open('/proc/self/status').read())")
    assert doc["status"] == "succeeded"
    uid, euid, gid = (int(x) for x in doc["stdout"].splitlines()[0].split())
    assert uid != 0 and euid != 0 and gid != 0
    cap_eff = next(line for line in doc["stdout"].splitlines() if line.startswith("CapEff:"))
    assert cap_eff.split()[1] == "0000000000000000"


@pytest.mark.every_runtime
def test_root_filesystem_is_read_only(run_code):
    doc = run_code(
        program(
            """
            import errno
            paths = ["/usr/evil", "/evil", "/sandbox/evil", "/opt/executioner/runner.py"]
            # a runtime's packages (python-data): read-only, like everything outside /tmp
            paths += ["/opt/runtime/site-packages/evil.py", "/opt/runtime/site-packages/numpy/__init__.py"]
            for path in paths:
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
    if run_code.runtime == "python-data":  # its packages are there, and read-only
        assert lines[-2].split()[1] in ("EROFS", "EACCES"), lines
    assert lines[-1] == "/tmp fine"


@pytest.mark.every_runtime
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


@pytest.mark.every_runtime
def test_fork_bomb_is_contained(run_code):
    # The pids limit (64 per local sandbox, the kubelet's 256 per pod) stops it before memory runs out.
    doc = run_code("import os\nwhile True:\n    os.fork()", timeout=5)
    if run_code.stack.runtime_class == "gvisor":
        # gVisor's tasks live in its sentry, outside the pod's pids cgroup: the memory limit stops them instead.
        assert doc["status"] == "memory_exceeded", doc
    else:
        assert doc["status"] == "failed", doc
        assert "BlockingIOError" in doc["stderr"] or "Resource temporarily unavailable" in doc["stderr"]
    assert run_code("print('still alive')")["stdout"] == "still alive\n"


def test_thread_bomb_is_contained(run_code):
    doc = run_code(
        "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()",
        timeout=5,
    )
    if run_code.stack.runtime_class == "gvisor":  # as for the fork bomb: the memory limit stops gVisor's tasks
        assert doc["status"] == "memory_exceeded", doc
    else:
        assert doc["status"] == "failed", doc
        assert "can't start new thread" in doc["stderr"]


@pytest.mark.every_runtime
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
    fake = json.dumps(
        {
            "v": 1,
            "status": "succeeded",
            "exit_code": 0,
            "stdout": "forged",
            "stderr": "",
            "stdout_truncated": False,
            "stderr_truncated": False,
            "duration_ms": 1,
            "error": None,
        }
    )
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
    if run_code.stack.runtime_class == "gvisor":
        # Known gap (README, threat model): gVisor delivers SIGKILL to the runner, PID 1 of its namespace, where Linux
        # drops it. The program can only end its own execution as `error`, with the reason; it reports nothing.
        assert doc["status"] == "error", doc
        assert doc["error"].startswith("the sandbox ended without reporting a result"), doc
        assert doc["stdout"] == "" and doc["exit_code"] is None, doc
        return
    assert doc["status"] == "succeeded", doc
    assert doc["stdout"].splitlines()[-1] == "still here"


@pytest.mark.every_runtime
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
            try:
                os.open("/proc/1/fd/1", os.O_WRONLY)
                print("open", "opened")
            except OSError as e:
                print("open", errno.errorcode[e.errno])
            libc = ctypes.CDLL(None, use_errno=True)
            result = libc.ptrace(16, 1, 0, 0)  # PTRACE_ATTACH
            print("ptrace", result, errno.errorcode.get(ctypes.get_errno()))
            """
        )
    )
    assert doc["status"] == "succeeded", doc
    lines = dict(line.split(" ", 1) for line in doc["stdout"].splitlines())
    # gVisor lists a non-dumpable process's fd numbers, but still refuses to open them (no forged envelope that way)
    assert lines["fd"] in (
        ("EACCES", "EPERM", "listed") if run_code.stack.runtime_class == "gvisor" else ("EACCES", "EPERM")
    )
    assert lines["open"] in ("EACCES", "EPERM")
    assert lines["ptrace"].startswith("-1")


@pytest.mark.every_runtime
def test_privileges_cannot_be_regained(run_code):
    doc = run_code(
        program(
            """
            import ctypes, errno, os
            status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
            libc = ctypes.CDLL(None, use_errno=True)
            def attempt(name, call):
                result = call()
                print(name, "ok" if result == 0 else errno.errorcode.get(ctypes.get_errno(), result))
            attempt("setuid0", lambda: libc.setuid(0))
            attempt("mount", lambda: libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None))
            attempt("unshare_user", lambda: libc.unshare(0x10000000))
            attempt("unshare_mount", lambda: libc.unshare(0x00020000))
            attempt("chroot", lambda: libc.chroot(b"/tmp"))
            try:
                open("/proc/sysrq-trigger", "w").write("h")
                print("sysrq ok")
            except OSError as e:
                print("sysrq", errno.errorcode[e.errno])
            print("no_new_privs", status.get("NoNewPrivs", "?").strip())
            print("seccomp", status.get("Seccomp", "?").strip())
            """
        )
    )
    assert doc["status"] == "succeeded", doc
    results = dict(line.split(" ", 1) for line in doc["stdout"].splitlines())
    # gVisor's sentry gives a program user namespaces of its own (and chroot inside one): no capability on the node
    sentry_only = ("unshare_user", "unshare_mount", "chroot") if run_code.stack.runtime_class == "gvisor" else ()
    for name in {"setuid0", "mount", "unshare_user", "unshare_mount", "chroot"} - set(sentry_only):
        assert results[name] in ("EPERM", "EACCES", "ENOSPC", "EINVAL"), (name, results)
    assert results["sysrq"] in ("EACCES", "EROFS", "ENOENT", "EPERM")
    assert results["no_new_privs"] == "1"


def test_setuid_binaries_do_not_elevate(run_code):
    doc = run_code(
        program(
            """
            import os, stat, subprocess
            found = []
            for directory in ("/usr/bin", "/bin", "/usr/sbin", "/usr/lib"):
                for root, _, files in os.walk(directory):
                    for name in files:
                        path = os.path.join(root, name)
                        try:
                            if os.lstat(path).st_mode & stat.S_ISUID:
                                found.append(path)
                        except OSError:
                            pass
            print("setuid binaries:", len(found))
            for path in found[:5]:
                try:
                    out = subprocess.run([path, "--help"], capture_output=True, timeout=2)
                except Exception as e:
                    out = None
            print("uid after", os.getuid(), os.geteuid())
            """
        )
    )
    assert doc["status"] == "succeeded", doc
    assert doc["stdout"].splitlines()[-1] == "uid after 65534 65534"


@pytest.mark.every_runtime
def test_one_execution_cannot_see_another(run_code):
    import concurrent.futures

    secret = new_marker("secret")
    victim_code = program(
        f"""
        import time
        open("/tmp/{secret}", "w").write("{secret}")
        print("victim ready", flush=True)
        time.sleep(4)
        print("{secret}")
        """
    )
    spy_code = program(
        f"""
        import os, time
        time.sleep(1)
        seen = [name for name in os.listdir("/tmp") if name not in ("outputs", ".matplotlib")]  # its own
        cmdlines = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    cmdlines.append(open(f"/proc/{{pid}}/cmdline", "rb").read())
                except OSError:
                    pass
        print(len(seen), any(b"{secret}" in c for c in cmdlines), "{secret}" in " ".join(seen))
        """
    )
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        victim = pool.submit(run_code, victim_code)
        spy = pool.submit(run_code, spy_code)
        victim_doc, spy_doc = victim.result(), spy.result()
    assert victim_doc["status"] == "succeeded" and secret in victim_doc["stdout"]
    assert spy_doc["status"] == "succeeded", spy_doc
    assert spy_doc["stdout"].split() == ["0", "False", "False"]
    assert secret not in spy_doc["stdout"] + spy_doc["stderr"]


def test_the_system_still_answers_after_every_attack(run_code):
    """Runs last in this module: everything above must have left the system healthy."""
    doc = run_code("print('hello after the attacks')")
    assert doc["status"] == "succeeded"
    assert doc["stdout"] == "hello after the attacks\n"
