"""Redis restarts under load: nothing accepted is lost, nothing runs twice, running executions end with their real
result. A real redis-server with an append-only file, a real worker and API, real sandboxes."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import Counter

import httpx

from helpers.programs import new_marker
from helpers.stack import free_port, start_api, start_worker, stop, wait_for_port


def start_durable_redis(directory, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--loglevel",
            "warning",
        ],
    )
    wait_for_port(port, process)
    return process


def test_a_redis_restart_loses_nothing_and_runs_nothing_twice(tmp_path):
    port = free_port()
    redis_process = start_durable_redis(tmp_path, port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
    env.update(
        EXECUTIONER_REDIS_URL=f"redis://127.0.0.1:{port}/0",
        EXECUTIONER_WORKER_CONCURRENCY="4",
        EXECUTIONER_LEASE_SECONDS="3",
        EXECUTIONER_SWEEP_INTERVAL_SECONDS="1",
        EXECUTIONER_GRACE_SECONDS="5",
        EXECUTIONER_RATE_LIMIT_PER_MINUTE="0",
    )
    worker = start_worker(env, tmp_path / "worker.log")
    url, api_process = start_api(env, tmp_path / "api.log")
    try:
        with httpx.Client(base_url=url, timeout=30) as api:
            markers = {}
            for _ in range(20):  # 4 run at once for ~2 s each: some run, most wait in the queue
                marker = new_marker("outage")
                doc = api.post(
                    "/v1/executions",
                    json={"code": f"import time\ntime.sleep(2)\nprint('{marker}')", "limits": {"timeout_seconds": 20}},
                )
                assert doc.status_code == 202
                markers[doc.json()["id"]] = marker
            time.sleep(1)
            stop(redis_process)  # SIGTERM: Redis writes its append-only file and exits
            time.sleep(5)  # longer than a lease: leases lapse while the store is away
            redis_process = start_durable_redis(tmp_path, port)

            deadline = time.monotonic() + 120
            docs = {}
            while time.monotonic() < deadline and len(docs) < len(markers):
                for execution_id in markers.keys() - docs.keys():
                    try:
                        doc = api.get(f"/v1/executions/{execution_id}").json()
                    except httpx.TransportError:
                        continue
                    if doc.get("status") not in (None, "queued", "running"):
                        docs[execution_id] = doc
                time.sleep(0.5)
        assert docs.keys() == markers.keys(), "executions still not finished after the restart"
        outcomes = Counter(doc["status"] for doc in docs.values())
        print(f"after a Redis restart: {dict(outcomes)}")
        # Even the ones running while the store was away end with their real result: the worker keeps trying to
        # record it, and its lease, lapsed meanwhile, is taken again rather than declared lost.
        assert outcomes == {"succeeded": len(markers)}, [doc["error"] for doc in docs.values()]
        for execution_id, doc in docs.items():
            assert doc["stdout"] == markers[execution_id] + "\n"
        claims = Counter(re.findall(r"running execution ([0-9a-f]{32})", (tmp_path / "worker.log").read_text()))
        assert all(claims[execution_id] <= 1 for execution_id in markers), claims  # never run twice
    finally:
        stop(api_process)
        stop(worker)
        stop(redis_process)
