"""Benchmark: latency, throughput and memory of local mode, each against bare python3 measured in the same run.

    make bench            (or: .venv/bin/python bench/run.py --runs 100 --seconds 15)

(a) bare `python3 -c "print('hello')"` start-up          -- the baseline
(b) the local sandbox alone (bubblewrap + runner + program): cold, and warm from the pool (hits, misses, refill rate,
    memory per waiting sandbox)
(c) the API round trip: POST /v1/executions?wait=30 for a hello world (warm and cold counted from the documents)
(d) sustained throughput with 2x cores concurrent clients, against bare parallel python3 launches
(e) resident memory of the idle stack (Redis + worker + API)
(f) with --kubernetes: one execution as a Job on the cluster in KUBECONFIG (the sandbox image must be loaded)
(h) runtimes: request to result through the API for `import numpy, pandas` in python-data (a cold sandbox with the
    prepared packages bound; `make runtimes` first) next to the hello world in python, and bare python3 importing the
    same packages from the same directory
(i) with --kubernetes: `import numpy, pandas` as a Job in the python-data runtime's image (loaded too)
Figures only: this is never part of the pass/fail test suite.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from httpx_sse import connect_sse

from executioner.models import Execution, Limits, Status
from executioner.settings import Settings
from executioner.worker.backends.local import LocalBackend

HELLO = "print('hello')"
DATA_IMPORT = "import numpy, pandas\nprint('hello')"
SANDBOX_PYTHON = Settings().sandbox_python


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def bare_python() -> None:
    subprocess.run([SANDBOX_PYTHON, "-c", HELLO], check=True, stdout=subprocess.DEVNULL)


def timed(action, runs: int) -> list[float]:
    action()  # warm caches once
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def sandbox_once(backend: LocalBackend) -> None:
    execution = Execution.new(
        code=HELLO, limits=Limits(timeout_seconds=5, memory_mb=128), backend="local", status=Status.running
    )
    outcome = backend.run(execution)
    assert outcome.stdout == "hello\n", outcome


def warm_sandbox_figures(base_p50: float, runs: int) -> None:
    """(b) on warm sandboxes: the pool's hits and misses, how fast it refills, what a waiting sandbox costs."""
    backend = LocalBackend(Settings(local_pool_size=Settings().worker_concurrency))
    backend.start_pool()
    assert backend.pool is not None, "this machine cannot keep warm sandboxes (see `executioner doctor`)"
    try:
        while backend.pool.ready() < backend.pool.size:
            time.sleep(0.05)
        time.sleep(1)  # settled
        rss, pss = memory_of([pid for root in backend.pool.pids() for pid in process_tree(root)])
        size = backend.pool.size
        p50, p95 = percentiles(timed(lambda: sandbox_once(backend), runs))
        stats = backend.pool.stats
        refill = statistics.median(stats.start_seconds) * 1000
        print(
            f"(b) warm sandbox alone              p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({p50 / base_p50:.2f}x); "
            f"pool of {size}: {stats.hits} hits, {stats.misses} misses"
        )
        print(
            f"    pool refill                     p50 {refill:7.1f} ms per sandbox (up to {1000 / refill:.0f}/s); "
            f"a waiting sandbox holds RSS {rss / size:.1f} MiB, PSS {pss / size:.1f} MiB"
        )
    finally:
        backend.close()


def throughput(action, clients: int, seconds: float) -> float:
    done = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            action()
            with lock:
                done += 1

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    return done / (time.monotonic() - started)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_stack(port: int, workdir: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
    env["EXECUTIONER_PORT"] = str(port)
    env["EXECUTIONER_RATE_LIMIT_PER_MINUTE"] = "0"  # the benchmark measures the engine, not the admission limits
    with open(workdir / "stack.log", "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("executioner")), "up", "--log-level", "WARNING"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        raise SystemExit(f"the stack did not start:\n{(workdir / 'stack.log').read_text()[-2000:]}")
    # The worker may come up a moment after the API: wait for a first execution.
    httpx.post(f"http://127.0.0.1:{port}/v1/executions?wait=30", json={"code": HELLO}, timeout=60).raise_for_status()
    return process


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def memory_of(pids: list[int]) -> tuple[float, float]:
    """Resident and proportional set sizes in MiB, summed over processes."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--kubernetes", action="store_true", help="also time the Kubernetes Job backend")
    args = parser.parse_args()
    if not shutil.which("bwrap") or not shutil.which("redis-server"):
        raise SystemExit("needs bwrap and redis-server: run `make deps`")
    cores = os.cpu_count() or 1
    clients = 2 * cores
    print(
        f"THE_EXECUTIONER local-mode benchmark: {cores} cores, {args.runs} runs, {clients} clients, {args.seconds:g} s"
    )

    bare = timed(bare_python, args.runs)
    base_p50, base_p95 = percentiles(bare)
    print(f"(a) bare python3 hello world        p50 {base_p50:7.1f} ms  p95 {base_p95:7.1f} ms  (baseline 1.00x)")

    backend = LocalBackend(Settings())  # no pool: every sandbox cold
    sandbox = timed(lambda: sandbox_once(backend), args.runs)
    p50, p95 = percentiles(sandbox)
    print(f"(b) cold sandbox alone              p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({p50 / base_p50:.2f}x)")
    warm_sandbox_figures(base_p50, args.runs)

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        stack = start_stack(port, Path(tmp))
        served: dict[str, int] = {}  # executions by the path that served them ("warm" or "cold")

        def count(document: dict) -> None:
            served[document.get("sandbox_start") or "?"] = served.get(document.get("sandbox_start") or "?", 0) + 1

        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:

                def round_trip() -> None:
                    response = client.post("/v1/executions", params={"wait": 30}, json={"code": HELLO})
                    assert response.status_code == 200 and response.json()["stdout"] == "hello\n", response.text
                    count(response.json())

                api = timed(round_trip, args.runs)

                def first_output_byte() -> None:
                    execution_id = client.post("/v1/executions", json={"code": HELLO}).json()["id"]
                    with connect_sse(client, "GET", f"/v1/executions/{execution_id}/events") as source:
                        next(event for event in source.iter_sse() if event.event == "stdout")

                first_byte = timed(first_output_byte, args.runs)
            p50, p95 = percentiles(api)
            round_trip_p50 = p50
            print(
                f"(c) API round trip with ?wait       p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({p50 / base_p50:.2f}x; "
                f"target <= 2x); {served.get('warm', 0)} warm, {served.get('cold', 0)} cold"
            )
            served.clear()
            p50, p95 = percentiles(first_byte)
            print(
                f"(c') time to first output byte (SSE) p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({p50 / base_p50:.2f}x; "
                f"{p50 / round_trip_p50:.2f}x the round trip)"
            )

            bare_rate = throughput(bare_python, clients, args.seconds)
            clients_local = threading.local()

            def api_call() -> None:
                if not hasattr(clients_local, "client"):
                    clients_local.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
                response = clients_local.client.post("/v1/executions", params={"wait": 30}, json={"code": HELLO})
                assert response.status_code == 200, response.text
                with lock:
                    count(response.json())

            lock = threading.Lock()
            api_rate = throughput(api_call, clients, args.seconds)
            print(
                f"(d) throughput, {clients} clients            bare python3 {bare_rate:6.1f}/s   API {api_rate:6.1f}/s  "
                f"({api_rate / bare_rate:.0%} of bare; target >= 50%); {served.get('warm', 0)} warm, "
                f"{served.get('cold', 0)} cold"
            )

            runtime_figures(port, base_p50, args.runs)

            time.sleep(3)  # idle
            rss, pss = memory_of(process_tree(stack.pid))
            print(f"(e) idle stack memory               RSS {rss:6.1f} MiB  PSS {pss:6.1f} MiB  (target < 300 MiB)")
        finally:
            os.killpg(stack.pid, signal.SIGTERM)
            stack.wait(timeout=20)
    if args.kubernetes:
        kubernetes_latency(base_p50, runs=min(args.runs, 20))


def runtime_figures(port: int, base_p50: float, runs: int) -> None:
    """(h) request to result per runtime, through the API, beside bare python3 doing the same import; the three
    alternate run by run so that drift in the machine's load hits them alike."""
    from executioner.runtime_packages import prepared_packages

    packages = prepared_packages(Settings(), "python-data")
    bare_code = f"import sys; sys.path.insert(0, {str(packages)!r}); {DATA_IMPORT}"
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:

        def request(runtime: str, code: str) -> None:
            body = {"code": code, "runtime": runtime, "limits": {"timeout_seconds": 30, "memory_mb": 384}}
            document = client.post("/v1/executions", params={"wait": 30}, json=body).json()
            assert document["status"] == "succeeded" and document["stdout"] == "hello\n", document

        actions = {
            "python: hello world": lambda: request("python", HELLO),
            "python-data: import numpy, pandas": lambda: request("python-data", DATA_IMPORT),
            "bare python3: import numpy, pandas": lambda: subprocess.run(
                [SANDBOX_PYTHON, "-I", "-c", bare_code], check=True, stdout=subprocess.DEVNULL
            ),
        }
        samples: dict[str, list[float]] = {label: [] for label in actions}
        for action in actions.values():
            action()  # warm caches once
        for _ in range(max(runs // 5, 5)):
            for label, action in actions.items():
                started = time.perf_counter()
                action()
                samples[label].append((time.perf_counter() - started) * 1000)
    for label, times in samples.items():
        p50, p95 = percentiles(times)
        print(f"(h) {label:38} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({p50 / base_p50:.2f}x)")


def kubernetes_latency(base_p50: float, runs: int) -> None:
    from executioner.kube import kubernetes_api_client
    from executioner.operator.prerequisites import ensure_prerequisites
    from executioner.worker.backends.kubernetes import KubernetesBackend

    settings = Settings()
    api = kubernetes_api_client()
    ensure_prerequisites(api, settings.sandbox_namespace)
    backend = KubernetesBackend(settings, api)

    def job_once() -> None:
        execution = Execution.new(
            code=HELLO, limits=Limits(timeout_seconds=5, memory_mb=128), backend="kubernetes", status=Status.running
        )
        outcome = backend.run(execution)
        backend.cleanup(execution.id)
        assert outcome.stdout == "hello\n", outcome

    p50, p95 = percentiles(timed(job_once, runs))
    print(f"(f) Kubernetes Job round trip      p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({p50 / base_p50:.1f}x)")

    def data_import_once() -> None:
        """`import numpy, pandas` in the python-data runtime's image (loaded on the node: no pull is timed)."""
        execution = Execution.new(
            code=DATA_IMPORT,
            limits=Limits(timeout_seconds=30, memory_mb=384),
            backend="kubernetes",
            status=Status.running,
            runtime="python-data",
        )
        outcome = backend.run(execution)
        backend.cleanup(execution.id)
        assert outcome.stdout == "hello\n", outcome

    d50, d95 = percentiles(timed(data_import_once, runs))
    print(
        f"(i) Kubernetes python-data import  p50 {d50:7.1f} ms  p95 {d95:7.1f} ms  ({d50 / base_p50:.1f}x; "
        f"+{d50 - p50:.0f} ms over the hello world Job)"
    )

    def first_byte_once() -> float:
        """Milliseconds from asking for the Job to the program's first byte reaching the worker (the followed log)."""
        execution = Execution.new(
            code="print('hello', flush=True)\nimport time\ntime.sleep(2)\n",
            limits=Limits(timeout_seconds=5, memory_mb=128),
            backend="kubernetes",
            status=Status.running,
        )
        arrived: list[float] = []

        class FirstByte:
            def write(self, stream: str, data: bytes) -> None:
                arrived.append(time.perf_counter())

            def truncated(self, stream: str) -> None:
                pass

        started = time.perf_counter()
        backend.run(execution, FirstByte())
        backend.cleanup(execution.id)
        return (arrived[0] - started) * 1000 if arrived else math.nan

    first = [first_byte_once() for _ in range(runs)]
    if any(math.isnan(ms) for ms in first):
        print("(g) Kubernetes first output byte   not measured: the cluster's sandbox image predates live output")
        return
    f50, f95 = percentiles(first)
    print(
        f"(g) Kubernetes first output byte   p50 {f50:7.1f} ms  p95 {f95:7.1f} ms  ({f50 / base_p50:.1f}x; "
        f"{f50 / p50:.2f}x the Job round trip)"
    )


if __name__ == "__main__":
    main()
