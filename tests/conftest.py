"""Shared fixtures: a real redis-server, a real Celery worker, the real API.

Fixtures
- redis_url (session): a private redis-server.
- stack_env (session): environment for components of the local stack.
- stack (session): worker + API on the local backend; `stack.url` is the API.
- stack_url (session): the same URL, for the browser tests.
- api (function): an httpx.Client on the stack's API.
- store (function): an ExecutionStore on the stack's Redis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from executioner.store import ExecutionStore
from helpers.stack import REPO, start_api, start_redis, start_worker, stop


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = REPO / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url, process = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    stop(process)


@pytest.fixture(scope="session")
def stack_env(redis_url) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
    env.update(
        EXECUTIONER_REDIS_URL=redis_url,
        EXECUTIONER_BACKEND="local",
        EXECUTIONER_WORKER_CONCURRENCY="4",
        EXECUTIONER_LEASE_SECONDS="3",
        EXECUTIONER_SWEEP_INTERVAL_SECONDS="1",
        EXECUTIONER_GRACE_SECONDS="5",
    )
    return env


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    logs: Path


@pytest.fixture(scope="session")
def stack(stack_env, tmp_path_factory):
    logs = tmp_path_factory.mktemp("stack-logs")
    worker = start_worker(stack_env, logs / "worker.log")
    url, api_process = start_api(stack_env, logs / "api.log")
    yield Stack(url=url, env=stack_env, logs=logs)
    stop(api_process)
    stop(worker)


@pytest.fixture(scope="session")
def stack_url(stack) -> str:
    return stack.url


@pytest.fixture
def api(stack):
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        yield client


@pytest.fixture
def store(redis_url):
    store = ExecutionStore.from_url(redis_url, 3600)
    yield store
    store.redis.close()
