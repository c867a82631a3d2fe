"""Store tests get a Redis of their own: the session stack's sweeper would resolve their lease-less records."""

from __future__ import annotations

import pytest

from executioner.store import ExecutionStore
from helpers.stack import start_redis, stop


@pytest.fixture(scope="module")
def private_redis_url(tmp_path_factory):
    url, process = start_redis(tmp_path_factory.mktemp("store-redis"))
    yield url
    stop(process)


@pytest.fixture
def store(private_redis_url):
    store = ExecutionStore.from_url(private_redis_url, 3600)
    yield store
    store.redis.close()
