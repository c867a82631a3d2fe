"""A private Redis + API (+ optionally a worker) with settings of the test's choosing."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import httpx

from helpers.stack import start_api, start_redis, start_worker, stop


@contextmanager
def private_api(tmp_path: Path, worker: bool = False, redis_options: tuple[str, ...] = (), **settings: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    redis_url, redis_process = start_redis(tmp_path, *redis_options)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
    env["EXECUTIONER_REDIS_URL"] = redis_url
    env.update({f"EXECUTIONER_{name.upper()}": str(value) for name, value in settings.items()})
    api_url, api_process = start_api(env, tmp_path / "api.log")
    worker_process = start_worker(env, tmp_path / "worker.log") if worker else None
    try:
        with httpx.Client(base_url=api_url, timeout=60) as client:
            client.logs = tmp_path
            client.env = env
            client.redis_url = redis_url
            yield client
    finally:
        stop(worker_process)
        stop(api_process)
        stop(redis_process)
