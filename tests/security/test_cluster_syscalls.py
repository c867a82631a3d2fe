"""The kernel surface a sandbox pod reaches, on each runtime of the test cluster.

Three sandboxes: runc with RuntimeDefault (the default), runc with the chart's Localhost profile
(EXECUTIONER_SANDBOX_SECCOMP_PROFILE: RuntimeDefault minus io_uring), and gVisor (RuntimeClass `gvisor`). The
attacks run only inside the pods; the host only reads what they print.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from executioner.kube import kubernetes_api_client
from executioner.models import Execution, Limits, Status
from executioner.settings import Settings
from executioner.worker.backends.kubernetes import KubernetesBackend
from helpers.programs import program
from helpers.stack import run_program

pytestmark = pytest.mark.cluster

PROFILE = "executioner/sandbox.json"  # where hack/cluster/up.sh installs charts/executioner/files/sandbox-seccomp.json

# Each dangerous call by its x86_64 number with arguments that succeed where the kernel lets them through.
SYSCALLS = program(
    """
    import ctypes, errno, json
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    def call(number, *args):
        ctypes.set_errno(0)
        result = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
        return "ok" if result >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    io_uring_params, bpf_attr, perf_attr = (ctypes.create_string_buffer(n) for n in (120, 128, 128))
    perf_attr[0:8] = (1).to_bytes(4, "little") + (128).to_bytes(4, "little")  # PERF_TYPE_SOFTWARE, size
    print(json.dumps({
        "io_uring_setup": call(425, 1, io_uring_params),
        "bpf": call(321, 0, bpf_attr, 128),  # BPF_MAP_CREATE
        "add_key": call(248, b"user", b"executioner", b"x", 1, -2),  # into the process keyring
        "keyctl": call(250, 0, -3, 0),  # KEYCTL_GET_KEYRING_ID of the session keyring
        "request_key": call(249, b"user", b"executioner", None, 0),
        "userfaultfd": call(323, 0),
        "perf_event_open": call(298, perf_attr, 0, -1, -1, 0),
        "mount": call(165, b"none", b"/tmp", b"tmpfs", 0, None),
        "unshare_user": call(272, 0x10000000),
        "unshare_mount": call(272, 0x00020000),
    }))
    """
)
REFUSED = ("EPERM", "ENOSYS")
GVISOR_SENTRY_CALLS = {"add_key", "keyctl", "request_key", "perf_event_open", "unshare_user", "unshare_mount"}

# Where runc pods show host paths in /proc/self/mountinfo: the kubelet's and containerd's own state directories
# (bind-mount sources and overlay layers), on the usual layout and on the test cluster's.
RUNTIME_STATE_DIRS = (
    "/var/lib/kubelet/",
    "/var/lib/containerd/",
    "/var/lib/executioner-cluster/kubelet/",
    "/var/lib/executioner-cluster/containerd/",
)


# what the kernel makes up rather than takes from a disk: their root field is no host path
VIRTUAL_FILESYSTEMS = {"proc", "sysfs", "cgroup", "cgroup2", "tmpfs", "devtmpfs", "devpts", "mqueue", "dev"}


def execution(code: str) -> Execution:
    return Execution.new(
        code=code,
        stdin="",
        limits=Limits(timeout_seconds=10, memory_mb=128),
        backend="kubernetes",
        status=Status.running,
    )


@pytest.fixture(params=["runc", "runc+profile", "gvisor"])
def run_in_pod(request):
    """Run a program in a sandbox pod of one kind; return (status, stdout, error or stderr)."""
    if request.param == "runc+profile":
        stack = request.getfixturevalue("kubernetes_stack")
        backend = KubernetesBackend(
            Settings(
                sandbox_namespace=stack.namespace,
                sandbox_image=stack.env["EXECUTIONER_SANDBOX_IMAGE"],
                sandbox_seccomp_profile=PROFILE,
            ),
            kubernetes_api_client(stack.env["KUBECONFIG"]),
        )

        def run(code: str) -> tuple[Status, str, str | None]:
            job = execution(code)
            try:
                outcome = backend.run(job)
            finally:
                backend.cleanup(job.id)
            return outcome.status, outcome.stdout, outcome.error or outcome.stderr

    else:
        stack = request.getfixturevalue("gvisor_stack" if request.param == "gvisor" else "kubernetes_stack")

        def run(code: str) -> tuple[Status, str, str | None]:
            with httpx.Client(base_url=stack.url, timeout=120) as client:
                doc = run_program(client, code)
            return Status(doc["status"]), doc["stdout"], doc["error"] or doc["stderr"]

    run.kind = request.param
    return run


def test_dangerous_syscalls_are_refused(run_in_pod):
    status, stdout, error = run_in_pod(SYSCALLS)
    assert status is Status.succeeded, error
    results = json.loads(stdout)
    reachable = {name for name, result in results.items() if result not in REFUSED}
    if run_in_pod.kind == "gvisor":
        # The sentry answers these itself (its own keyrings, perf stub and user namespaces: no capability on the
        # node); the host kernel never sees them. io_uring, bpf, userfaultfd and mount it refuses.
        assert reachable <= GVISOR_SENTRY_CALLS, results
    else:
        # containerd 1.6's RuntimeDefault still allows io_uring: the reason the Localhost profile exists.
        assert reachable == ({"io_uring_setup"} if run_in_pod.kind == "runc" else set()), results


def test_ordinary_programs_still_work(run_in_pod):
    status, stdout, error = run_in_pod(
        program(
            """
            import multiprocessing, sqlite3, subprocess, sys, threading
            def square(x):
                return x * x
            if __name__ == "__main__":
                threads = [threading.Thread(target=square, args=(i,)) for i in range(8)]
                [t.start() for t in threads]
                [t.join() for t in threads]
                with multiprocessing.Pool(2) as pool:
                    print(sum(pool.map(square, range(10))))
                print(subprocess.run([sys.executable, "-c", "print('child')"], capture_output=True, text=True).stdout.strip())
                print(sqlite3.connect(":memory:").execute("select 6 * 7").fetchone()[0])
            """
        )
    )
    assert (status, stdout) == (Status.succeeded, "285\nchild\n42\n"), error


def test_the_mount_table_shows_no_host_path_but_the_runtimes_own(run_in_pod):
    status, stdout, error = run_in_pod("print(open('/proc/self/mountinfo').read())")
    assert status is Status.succeeded, error
    # the root field of each mount of a real filesystem (bind-mount sources) and the overlay's layer directories
    host_paths = set()
    for line in filter(None, stdout.splitlines()):
        fields, (fstype, _source, options) = line.split(" - ", 1)[0].split(), line.split(" - ", 1)[1].split()
        if fstype not in VIRTUAL_FILESYSTEMS and fields[3] != "/":
            host_paths.add(fields[3])
        host_paths.update(re.findall(r"(?:lowerdir|upperdir|workdir)=([^,]+)", options))
    host_paths = {path for paths in host_paths for path in paths.split(":")}
    if run_in_pod.kind == "gvisor":
        # gVisor's sentry builds its own mount table: nothing of the node shows
        assert host_paths == set(), stdout
    else:
        # runc cannot hide them: the kernel prints each bind mount's source path and the overlay's layer
        # directories; they are the kubelet's and containerd's state, never other host directories
        assert host_paths and all(path.startswith(RUNTIME_STATE_DIRS) for path in host_paths), sorted(host_paths)


def test_a_node_without_the_profile_fails_the_execution_with_a_reason(kubernetes_stack):
    backend = KubernetesBackend(
        Settings(
            sandbox_namespace=kubernetes_stack.namespace,
            sandbox_image=kubernetes_stack.env["EXECUTIONER_SANDBOX_IMAGE"],
            sandbox_seccomp_profile="executioner/no-such-profile.json",
            schedule_timeout_seconds=20,
        ),
        kubernetes_api_client(kubernetes_stack.env["KUBECONFIG"]),
    )
    job = execution("print('never runs')")
    try:
        outcome = backend.run(job)
    finally:
        backend.cleanup(job.id)
    assert outcome.status is Status.error
    assert "no-such-profile.json" in outcome.error, outcome.error
