"""Benchmark: what a sandbox pod's runtime costs per execution, against bare python3 measured in the same run.

    .venv/bin/python -P bench/runtimes.py --runs 10      (KUBECONFIG: a cluster with RuntimeClass `gvisor`,
                                                          the sandbox image loaded; the test cluster has both)

Each execution is cold: a fresh Job, pod and runtime sandbox per run (there is no warm pool of sandbox pods yet).
Runtimes alternate run by run so drift in the cluster hits them alike:
(a) bare `/usr/bin/python3 -c "print('hello')"` on this machine        -- the baseline
(b) runc, RuntimeDefault seccomp (the default)
(c) runc, the Localhost profile (EXECUTIONER_SANDBOX_SECCOMP_PROFILE=executioner/sandbox.json, as up.sh installs it)
(d) gVisor (EXECUTIONER_RUNTIME_CLASS_NAME=gvisor)
Job round trips move in steps of about a second (the kubelet notices a finished container on its 1 s relist), so
read the medians as "about one relist" or "about two". Figures only: never part of the pass/fail test suite.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from functools import partial

from executioner.kube import kubernetes_api_client
from executioner.models import Execution, Limits, Status
from executioner.operator.prerequisites import ensure_prerequisites
from executioner.settings import Settings
from executioner.worker.backends.kubernetes import KubernetesBackend

HELLO = "print('hello')"
# a program that does some work inside the sandbox: imports, a thousand small files in /tmp, a subprocess
WORK = (
    "import json, os, subprocess, sys\n"
    "for i in range(1000):\n"
    "    open(f'/tmp/{i}', 'w').write(json.dumps({'i': i}))\n"
    "print(subprocess.run([sys.executable, '-c', 'print(1)'], capture_output=True, text=True).stdout.strip())\n"
)
RUNTIMES = {
    "runc, RuntimeDefault": {},
    "runc, Localhost profile": {"sandbox_seccomp_profile": "executioner/sandbox.json"},
    "gVisor": {"runtime_class_name": "gvisor"},
}


def milliseconds(action) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def bare_python() -> None:
    subprocess.run(["/usr/bin/python3", "-c", HELLO], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    api = kubernetes_api_client()
    namespace = Settings().sandbox_namespace
    ensure_prerequisites(api, namespace)
    backends = {name: KubernetesBackend(Settings(**overrides), api) for name, overrides in RUNTIMES.items()}

    def job(backend: KubernetesBackend, code: str) -> None:
        execution = Execution.new(
            code=code, limits=Limits(timeout_seconds=10, memory_mb=128), backend="kubernetes", status=Status.running
        )
        try:
            outcome = backend.run(execution)
        finally:
            backend.cleanup(execution.id)
        assert outcome.status is Status.succeeded, outcome

    bare_python()  # warm caches once
    for backend in backends.values():
        job(backend, HELLO)
    bare = [milliseconds(bare_python) for _ in range(args.runs)]
    hello: dict[str, list[float]] = {name: [] for name in backends}
    work: dict[str, list[float]] = {name: [] for name in backends}
    for _ in range(args.runs):
        for name, backend in backends.items():
            hello[name].append(milliseconds(partial(job, backend, HELLO)))
            work[name].append(milliseconds(partial(job, backend, WORK)))
    base = statistics.median(bare)
    print(f"THE_EXECUTIONER runtime benchmark: {args.runs} cold Jobs per runtime and program (no warm pool exists)")
    print(f"(a) bare /usr/bin/python3 hello          p50 {base:8.1f} ms  (baseline 1.00x)")
    runc = statistics.median(hello["runc, RuntimeDefault"])
    for letter, name in zip("bcd", backends, strict=True):
        h, w = statistics.median(hello[name]), statistics.median(work[name])
        print(
            f"({letter}) {name:<24} hello p50 {h:8.1f} ms ({h / base:5.1f}x bare, {h / runc:4.2f}x runc)"
            f"   1000 files + subprocess p50 {w:8.1f} ms"
        )


if __name__ == "__main__":
    main()
