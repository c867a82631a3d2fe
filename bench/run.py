"""Benchmark: latency, throughput and memory of both backends, each against bare python3 measured in the same run.

    make bench              (or: .venv/bin/python bench/run.py --runs 100 --seconds 15)
    make bench-kubernetes   (bench/run.py --kubernetes; BENCH_ARGS=--kubernetes-only leaves the local figures out)

(a) bare `python3 -c "print('hello')"` start-up          -- the baseline
(b) the local sandbox alone (bubblewrap + runner + program): cold, and warm from the pool (hits, misses, refill rate,
    memory per waiting sandbox)
(c) the API round trip: POST /v1/executions?wait=30 for a hello world (warm and cold counted from the documents)
(d) sustained throughput with 2x cores concurrent clients, against bare parallel python3 launches
(e) resident memory of the idle stack (Redis + worker + API)
(h) runtimes: request to result through the API for `import numpy, pandas` in python-data (a cold sandbox with the
    prepared packages bound; `make runtimes` first) next to the hello world in python, and bare python3 importing the
    same packages from the same directory
With --kubernetes (KUBECONFIG: a cluster with the sandbox images loaded, e.g. `make cluster-up images`), through the
API of `executioner up` with EXECUTIONER_BACKEND=kubernetes (Redis, worker, operator, API; sandbox namespace
executioner-bench), each round trip split into queue (created to a worker's start), worker and API (the rest):
(k) a stack without a pool: the cold path (a Job per execution), hello world and python-data's `import numpy, pandas`
(w) a stack with a warm pool of python pods: hello world run after run, then N executions submitted at once; which
    path served each (the documents' sandbox_start) and how fast the operator makes pool pods Ready (a watch)
At the end, a table of every figure: value, ratio to (a), target, met or missed.
Figures only: this is never part of the pass/fail test suite.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
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
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
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


def timed(action, runs: int, warm_up: bool = True) -> list[float]:
    if warm_up:
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
        record(
            "(b) local: sandbox alone, warm",
            f"p50 {p50:.1f} ms, p95 {p95:.1f} ms; pool of {size}: {stats.hits} hits, {stats.misses} misses",
            f"{p50 / base_p50:.2f}x",
        )
        record(
            "(b) local: pool refill; a waiting sandbox's memory",
            f"p50 {refill:.1f} ms per sandbox (up to {1000 / refill:.0f}/s); RSS {rss / size:.1f} MiB, "
            f"PSS {pss / size:.1f} MiB",
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


@dataclass
class Figure:
    name: str
    value: str
    ratio: str = ""
    target: str = ""
    verdict: str = ""  # "met", "**missed**" or "" (no target)


FIGURES: list[Figure] = []  # every figure of this run, in order, for the closing table


def record(name: str, value: str, ratio: str = "", target: str = "", met: bool | None = None) -> None:
    FIGURES.append(Figure(name, value, ratio, target, "" if met is None else "met" if met else "**missed**"))


def table(figures: list[Figure]) -> str:
    """The figures as a Markdown table (as in the README), columns padded to line up in a terminal too."""
    rows = [("Figure", "Value", "Ratio to (a)", "Target", "")]
    rows += [(f.name, f.value, f.ratio, f.target, f.verdict) for f in figures]
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |" for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def paths(served: Counter[str]) -> str:
    """Which path served the executions, from the documents' sandbox_start."""
    return ", ".join(f"{count} {path}" for path, count in sorted(served.items())) or "none"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_stack(workdir: Path, settings: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """`executioner up` with a state directory (a fresh private Redis) of its own and `settings` (EXECUTIONER_*
    without the prefix); yields the process and the API's URL once it has run a first execution; stops it after."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
    env["EXECUTIONER_PORT"] = str(port)
    env["EXECUTIONER_RATE_LIMIT_PER_MINUTE"] = "0"  # the benchmark measures the engine, not the admission limits
    env["EXECUTIONER_STATE_DIR"] = str(workdir / "state")
    env.update({f"EXECUTIONER_{name}": value for name, value in (settings or {}).items()})
    url = f"http://127.0.0.1:{port}"
    with open(workdir / "stack.log", "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("executioner")), "up", "--log-level", "WARNING"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise SystemExit(f"the stack did not start:\n{(workdir / 'stack.log').read_text()[-2000:]}")
        # The worker may come up a moment after the API: wait for a first execution.
        with httpx.Client(base_url=url, timeout=60) as client:
            execute(client, {"code": HELLO})
        yield process, url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def execute(client: httpx.Client, body: dict) -> dict:
    """Submit, wait for the final document (polling past the API's longest wait) and check it printed hello."""
    response = client.post("/v1/executions", params={"wait": 30}, json=body)
    response.raise_for_status()
    document = response.json()
    while not Status(document["status"]).terminal:
        time.sleep(0.05)
        document = client.get(f"/v1/executions/{document['id']}").json()
    assert document["status"] == "succeeded" and document["stdout"] == "hello\n", document
    return document


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


def local_api_figures(base_p50: float, runs: int, seconds: float, clients: int) -> None:
    """(c) to (e) and (h): through the API of a local stack."""
    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp)) as (stack, url):
        served: Counter[str] = Counter()  # executions by the path that served them ("warm" or "cold")
        with httpx.Client(base_url=url, timeout=60) as client:

            def round_trip() -> None:
                served[execute(client, {"code": HELLO}).get("sandbox_start") or "unrecorded"] += 1

            api = timed(round_trip, runs)

            def first_output_byte() -> None:
                execution_id = client.post("/v1/executions", json={"code": HELLO}).json()["id"]
                with connect_sse(client, "GET", f"/v1/executions/{execution_id}/events") as source:
                    next(event for event in source.iter_sse() if event.event == "stdout")

            first_byte = timed(first_output_byte, runs)
        p50, p95 = percentiles(api)
        round_trip_p50 = p50
        print(
            f"(c) API round trip with ?wait       p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({p50 / base_p50:.2f}x; "
            f"target <= 2x); {paths(served)}"
        )
        record(
            "(c) local: API hello world",
            f"p50 {p50:.1f} ms, p95 {p95:.1f} ms; {paths(served)}",
            f"{p50 / base_p50:.2f}x",
            "p50 at most 2.0x (a)",
            p50 <= 2 * base_p50,
        )
        p50, p95 = percentiles(first_byte)
        print(
            f"(c') time to first output byte (SSE) p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({p50 / base_p50:.2f}x; "
            f"{p50 / round_trip_p50:.2f}x the round trip)"
        )
        record("(c') local: first output byte (SSE)", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms", f"{p50 / base_p50:.2f}x")

        bare_rate = throughput(bare_python, clients, seconds)
        clients_local = threading.local()
        lock = threading.Lock()
        served.clear()

        def api_call() -> None:
            if not hasattr(clients_local, "client"):
                clients_local.client = httpx.Client(base_url=url, timeout=60)
            document = execute(clients_local.client, {"code": HELLO})
            with lock:
                served[document.get("sandbox_start") or "unrecorded"] += 1

        api_rate = throughput(api_call, clients, seconds)
        print(
            f"(d) throughput, {clients} clients            bare python3 {bare_rate:6.1f}/s   API {api_rate:6.1f}/s  "
            f"({api_rate / bare_rate:.0%} of bare; target >= 50%); {paths(served)}"
        )
        record(
            f"(d) local: throughput, {clients} clients",
            f"{api_rate:.1f}/s (bare launches {bare_rate:.1f}/s); {paths(served)}",
            f"{api_rate / bare_rate:.0%}",
            "at least 50% of bare",
            api_rate >= 0.5 * bare_rate,
        )

        runtime_figures(url, base_p50, runs)

        time.sleep(3)  # idle
        rss, pss = memory_of(process_tree(stack.pid))
        print(f"(e) idle stack memory               RSS {rss:6.1f} MiB  PSS {pss:6.1f} MiB  (target < 300 MiB)")
        record("(e) local: idle stack memory", f"RSS {rss:.1f} MiB, PSS {pss:.1f} MiB", "", "under 300 MiB", rss < 300)


def runtime_figures(url: str, base_p50: float, runs: int) -> None:
    """(h) request to result per runtime, through the API, beside bare python3 doing the same import; the three
    alternate run by run so that drift in the machine's load hits them alike."""
    from executioner.runtime_packages import prepared_packages

    packages = prepared_packages(Settings(), "python-data")
    bare_code = f"import sys; sys.path.insert(0, {str(packages)!r}); {DATA_IMPORT}"
    with httpx.Client(base_url=url, timeout=60) as client:

        def request(runtime: str, code: str) -> None:
            execute(client, {"code": code, "runtime": runtime, "limits": {"timeout_seconds": 30, "memory_mb": 384}})

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
        record(f"(h) local: {label}", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms", f"{p50 / base_p50:.2f}x")


BENCH_NAMESPACE = "executioner-bench"  # the Kubernetes stacks' sandbox namespace: nobody else's pool pods in it


class PoolWatch:
    """When each pool pod of a runtime appeared and when it first became Ready, on this machine's clock (a watch)."""

    def __init__(self, api_client, namespace: str, runtime: str):
        from kubernetes import client, watch

        from executioner.kube import POOL_LABEL

        self.appeared: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self._watch = watch.Watch()
        self._stopped = False
        follow = (client.CoreV1Api(api_client), namespace, f"{POOL_LABEL}={runtime}")
        threading.Thread(target=self._follow, args=follow, daemon=True).start()

    def _follow(self, core, namespace: str, selector: str) -> None:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        while not self._stopped:
            try:
                for event in self._watch.stream(
                    core.list_namespaced_pod, namespace, label_selector=selector, timeout_seconds=30
                ):
                    pod, now = event["object"], time.monotonic()
                    self.appeared.setdefault(pod.metadata.name, now)
                    if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []):
                        self.ready.setdefault(pod.metadata.name, now)
            except (ApiException, HTTPError):  # the watch broke: follow it again (pods seen keep their times)
                time.sleep(0.2)

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()

    def refill(self, since: float) -> tuple[int, float, float]:
        """Pool pods that appeared after `since` and are Ready: how many, in how many seconds from the first one's
        appearance to the last one's Ready, and the median of each one's appearance to Ready in ms."""
        made = [(self.appeared[name], ready) for name, ready in self.ready.items() if self.appeared[name] >= since]
        if not made:
            return 0, 0.0, 0.0
        span = max(ready for _, ready in made) - min(appeared for appeared, _ in made)
        return len(made), span, statistics.median((ready - appeared) * 1000 for appeared, ready in made)


def wait_for_full_pool(api_client, namespace: str, runtime: str, size: int, timeout: float = 120) -> float:
    """Wait until `size` pool Jobs of `runtime` wait with a Ready pod; returns when (time.monotonic())."""
    from kubernetes import client

    from executioner.kube import waiting_pool_selector

    batch = client.BatchV1Api(api_client)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = batch.list_namespaced_job(namespace, label_selector=waiting_pool_selector(runtime)).items
        if sum(1 for job in jobs if (job.status.ready or 0) >= 1) >= size:
            return time.monotonic()
        time.sleep(0.1)
    raise TimeoutError(f"the {runtime} pool in {namespace} did not reach {size} Ready pods in {timeout:g} s")


def remove_pool(api_client, namespace: str) -> None:
    from kubernetes import client

    from executioner.kube import POOL_LABEL

    client.BatchV1Api(api_client).delete_collection_namespaced_job(
        namespace, label_selector=POOL_LABEL, propagation_policy="Background"
    )


def sandbox_room(api_client) -> str:
    """How many cold sandbox pods the cluster's CPU requests leave room for: each requests its CPU limit
    (Guaranteed QoS), so the nodes' allocatable CPU, not their load, caps how many cold Jobs run at once."""
    from kubernetes import client, utils

    core = client.CoreV1Api(api_client)
    allocatable = sum(utils.parse_quantity(node.status.allocatable["cpu"]) for node in core.list_node().items)
    requested = sum(
        utils.parse_quantity(container.resources.requests.get("cpu", "0"))
        for pod in core.list_pod_for_all_namespaces(field_selector="status.phase!=Succeeded,status.phase!=Failed").items
        if pod.spec.node_name  # scheduled: a pending pod holds nothing yet
        for container in pod.spec.containers
        if container.resources and container.resources.requests
    )
    cpu = Settings().cpu_limit
    return (
        f"{float(allocatable):g} CPUs allocatable, {float(requested):g} requested by scheduled pods: "
        f"room for {int((allocatable - requested) / utils.parse_quantity(f'{cpu:g}'))} sandbox pods of {cpu:g} CPU"
    )


@dataclass
class Served:
    """One execution through the API: its round trip, the path that served it, and where the time went."""

    ms: float
    path: str  # the document's sandbox_start: "warm" or "cold"
    queue_ms: float  # created to a worker's start
    worker_ms: float  # a worker's start to the recorded result (the rest of ms: the API's answer)


def hello_through(client: httpx.Client) -> Served:
    started = time.perf_counter()
    document = execute(client, {"code": HELLO})
    ms = (time.perf_counter() - started) * 1000
    created, began, finished = (
        datetime.fromisoformat(document[field]) for field in ("created_at", "started_at", "finished_at")
    )
    return Served(
        ms,
        document.get("sandbox_start") or "unrecorded",
        (began - created).total_seconds() * 1000,
        (finished - began).total_seconds() * 1000,
    )


def summary(runs: list[Served]) -> str:
    """p50 and p95 of the round trips, the paths, and the p50 of each path's split: queue, worker, API (the rest)."""
    p50, p95 = percentiles([run.ms for run in runs])
    text = f"p50 {p50:.0f} ms, p95 {p95:.0f} ms; {paths(Counter(run.path for run in runs))}"
    for path in sorted({run.path for run in runs}):
        some = [run for run in runs if run.path == path]
        queue, worker = (
            statistics.median(run.queue_ms for run in some),
            statistics.median(run.worker_ms for run in some),
        )
        total = statistics.median(run.ms for run in some)
        text += (
            f"; {path} p50 {total:.0f} ms (queue {queue:.0f}, worker {worker:.0f}, API {total - queue - worker:.0f})"
        )
    return text


def kubernetes_figures(base_p50: float, runs: int, pool_size: int, at_once: int, slots: int) -> None:
    """(k) and (w): the Kubernetes backend through the API of `executioner up`, cold and then with a warm pool."""
    from executioner.kube import kubernetes_api_client
    from executioner.operator.prerequisites import ensure_prerequisites

    api_client = kubernetes_api_client()
    ensure_prerequisites(api_client, BENCH_NAMESPACE)
    remove_pool(api_client, BENCH_NAMESPACE)  # a previous run's, if it was interrupted
    room = sandbox_room(api_client)
    print(f"(k) Kubernetes cluster: {room}")
    record("(k) Kubernetes: the cluster at the start", room)
    settings = {
        "BACKEND": "kubernetes",
        "SANDBOX_NAMESPACE": BENCH_NAMESPACE,
        "WORKER_CONCURRENCY": str(slots),
        "KUBERNETES_POOL_SIZES": "{}",
    }
    data_body = {"code": DATA_IMPORT, "runtime": "python-data", "limits": {"timeout_seconds": 30, "memory_mb": 384}}
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_stack(Path(tmp), settings) as (_, url),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        cold = [hello_through(client) for _ in range(runs)]  # the stack's first execution warmed up
        data = timed(lambda: execute(client, data_body), max(runs // 2, 5))
    p50, _ = percentiles([run.ms for run in cold])
    print(f"(k) Kubernetes cold path (no pool)  {summary(cold)}")
    record(
        f"(k) Kubernetes: cold path (no pool), hello world, {runs} runs",
        summary(cold),
        f"{p50 / base_p50:.0f}x",
        "p50 at most 1 s",
        p50 <= 1000,
    )
    d50, d95 = percentiles(data)
    print(f"(k) Kubernetes python-data import   p50 {d50:7.1f} ms  p95 {d95:7.1f} ms  ({d50 / base_p50:.0f}x)")
    record(
        "(k) Kubernetes: python-data `import numpy, pandas` (cold)",
        f"p50 {d50:.0f} ms, p95 {d95:.0f} ms",
        f"{d50 / base_p50:.0f}x",
    )
    try:
        warm_pool_figures(api_client, base_p50, runs, pool_size, at_once, slots)
    except TimeoutError as exc:  # e.g. an operator without the pool's refill
        print(f"(w) Kubernetes warm pool not measured: {exc}")
        record("(w) Kubernetes: warm pool", f"not measured: {exc}")


def warm_pool_figures(api_client, base_p50: float, runs: int, pool_size: int, at_once: int, slots: int) -> None:
    """(w): a stack whose operator keeps `pool_size` python pods waiting."""
    settings = {
        "BACKEND": "kubernetes",
        "SANDBOX_NAMESPACE": BENCH_NAMESPACE,
        "WORKER_CONCURRENCY": str(slots),
        "KUBERNETES_POOL_SIZES": json.dumps({"python": pool_size}),
    }
    pool = PoolWatch(api_client, BENCH_NAMESPACE, "python")
    started = time.monotonic()
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            running_stack(Path(tmp), settings) as (_, url),
            httpx.Client(base_url=url, timeout=60) as client,
        ):
            wait_for_full_pool(api_client, BENCH_NAMESPACE, "python", pool_size)
            filled = pool.refill(started)
            sequential = [hello_through(client) for _ in range(runs)]
            # The same, each run once the pool is full again: without a refill's pod start-up competing for the
            # CPU, what the warm path itself costs.
            spaced = []
            for _ in range(runs):
                wait_for_full_pool(api_client, BENCH_NAMESPACE, "python", pool_size)
                spaced.append(hello_through(client))

            wait_for_full_pool(api_client, BENCH_NAMESPACE, "python", pool_size)
            burst_started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(at_once) as executor:
                burst = list(executor.map(lambda _: hello_through(client), range(at_once)))
            wall = time.monotonic() - burst_started
            wait_for_full_pool(api_client, BENCH_NAMESPACE, "python", pool_size)
            refilled = pool.refill(burst_started)
    finally:
        pool.stop()
        remove_pool(api_client, BENCH_NAMESPACE)

    p50, p95 = percentiles([run.ms for run in sequential])
    print(f"(w) Kubernetes warm pool of {pool_size}      {summary(sequential)}")
    record(
        f"(w) Kubernetes: hello world, {runs} runs one after another, pool of {pool_size}",
        summary(sequential),
        f"{p50 / base_p50:.0f}x",
        "p50 at most 150 ms, p95 at most 400 ms",
        p50 <= 150 and p95 <= 400,
    )
    s50, s95 = percentiles([run.ms for run in spaced])
    print(f"(w) Kubernetes warm, pool refilled  {summary(spaced)}")
    record(
        f"(w) Kubernetes: hello world, {runs} runs each after the pool refilled",
        summary(spaced),
        f"{s50 / base_p50:.0f}x",
        "p50 at most 150 ms, p95 at most 400 ms",
        s50 <= 150 and s95 <= 400,
    )
    rate = at_once / wall
    print(f"(w) Kubernetes {at_once} at once            {wall:.1f} s, {rate:.1f}/s; {summary(burst)}")
    record(
        f"(w) Kubernetes: {at_once} executions at once, pool of {pool_size}, {slots} worker slots",
        f"{wall:.1f} s, {rate:.1f}/s; {summary(burst)}",
        "",
        "at least 8/s",
        rate >= 8,
    )
    served = Counter(run.path for run in sequential + spaced + burst)
    record("(w) Kubernetes: pool hits and misses, (w) rows", f"{served['warm']} hits, {served['cold']} misses")
    for label, (made, span, each) in (("filling the empty pool", filled), (f"after the {at_once}", refilled)):
        rate_text = f"{made / span:.1f}/s" if span else "n/a"
        print(f"(w) pool refill, {label:22} {made} pods Ready in {span:.1f} s ({rate_text}); each p50 {each:.0f} ms")
        record(
            f"(w) Kubernetes: pool refill, {label}",
            f"{made} pods Ready in {span:.1f} s: {rate_text}; creation to Ready p50 {each:.0f} ms",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument(
        "--kubernetes", action="store_true", help="also measure the Kubernetes backend through the API (KUBECONFIG)"
    )
    parser.add_argument("--kubernetes-only", action="store_true", help="(a) and the Kubernetes figures, no local ones")
    parser.add_argument("--kubernetes-runs", type=int, default=25, help="hello worlds in a row per Kubernetes stack")
    parser.add_argument("--pool-size", type=int, default=8, help="the Kubernetes stack's warm pool of python pods")
    parser.add_argument("--concurrent", type=int, default=30, help="executions submitted at once on Kubernetes")
    parser.add_argument(
        "--worker-concurrency", type=int, default=4, help="the Kubernetes stacks' EXECUTIONER_WORKER_CONCURRENCY"
    )
    args = parser.parse_args()
    if not shutil.which("bwrap") or not shutil.which("redis-server"):
        raise SystemExit("needs bwrap and redis-server: run `make deps`")
    args.kubernetes |= args.kubernetes_only
    if args.kubernetes and not os.environ.get("KUBECONFIG"):
        raise SystemExit("--kubernetes needs KUBECONFIG (the last line of `make cluster-up`)")
    cores = os.cpu_count() or 1
    clients = 2 * cores
    print(
        f"THE_EXECUTIONER benchmark: {cores} cores, load average {os.getloadavg()[0]:.1f}, {args.runs} runs, "
        f"{clients} clients, {args.seconds:g} s"
    )

    bare = timed(bare_python, args.runs)
    base_p50, base_p95 = percentiles(bare)
    print(f"(a) bare python3 hello world        p50 {base_p50:7.1f} ms  p95 {base_p95:7.1f} ms  (baseline 1.00x)")
    record("(a) bare `python3 -c` hello world", f"p50 {base_p50:.1f} ms, p95 {base_p95:.1f} ms", "1.00x", "baseline")

    if not args.kubernetes_only:
        backend = LocalBackend(Settings())  # no pool: every sandbox cold
        p50, p95 = percentiles(timed(lambda: sandbox_once(backend), args.runs))
        print(f"(b) cold sandbox alone              p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({p50 / base_p50:.2f}x)")
        record("(b) local: sandbox alone, cold", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms", f"{p50 / base_p50:.2f}x")
        warm_sandbox_figures(base_p50, args.runs)
        local_api_figures(base_p50, args.runs, args.seconds, clients)
    if args.kubernetes:
        kubernetes_figures(base_p50, args.kubernetes_runs, args.pool_size, args.concurrent, args.worker_concurrency)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}\n")
    print(table(FIGURES))


if __name__ == "__main__":
    main()
