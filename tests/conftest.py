"""Shared fixtures: a real redis-server, a real Celery worker, the real API.

Fixtures
- redis_url (session): a private redis-server.
- stack_env (session): environment for components of the local stack.
- stack (session): worker + API on the local backend; `stack.url` is the API.
- stack_url (session): the same URL, for the browser tests.
- api (function): an httpx.Client on the stack's API.
- store (function): an ExecutionStore on the stack's Redis.
- run_code (function, parametrised over BACKENDS): run a program through the whole
  system (API, Redis, worker, sandbox) on each backend and return its document.
  A backend joins the shared behaviour and escape suites by adding its stack
  fixture (named "<backend>_stack") to BACKENDS.
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
    backend: str = "local"


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


BACKENDS = ["local"]


@pytest.fixture(params=BACKENDS)
def backend_stack(request):
    if request.param == "local":
        return request.getfixturevalue("stack")
    return request.getfixturevalue(f"{request.param}_stack")


@pytest.fixture
def run_code(backend_stack):
    client = httpx.Client(base_url=backend_stack.url, timeout=120)

    def run(code: str, stdin: str = "", timeout: float = 10, memory_mb: int = 128) -> dict:
        response = client.post(
            "/v1/executions",
            params={"wait": 30},
            json={"code": code, "stdin": stdin, "limits": {"timeout_seconds": timeout, "memory_mb": memory_mb}},
        )
        assert response.status_code in (200, 202), response.text
        document = response.json()
        while document["status"] in ("queued", "running"):
            document = client.get(f"/v1/executions/{document['id']}", params={"wait": 30}).json()
        return document

    run.stack = backend_stack
    yield run
    client.close()
