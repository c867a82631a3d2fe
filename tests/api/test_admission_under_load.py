"""Caps that hold under concurrency, a byte budget per key, and a store that refuses work before it fills up:
against a real API and a real Redis (no worker, so everything stays queued unless the test says otherwise)."""

from __future__ import annotations

import concurrent.futures
import uuid

import redis

from helpers.private import private_api

KEY_A, KEY_B = "key-a-" + uuid.uuid4().hex, "key-b-" + uuid.uuid4().hex
MiB = 1024 * 1024


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_two_hundred_concurrent_posts_admit_exactly_the_cap(tmp_path):
    with private_api(tmp_path, api_keys=KEY_A, max_active_per_key=5, rate_limit_per_minute=0) as api:

        def post(_: int) -> int:
            return api.post("/v1/executions", json={"code": "print(1)"}, headers=bearer(KEY_A)).status_code

        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            statuses = list(pool.map(post, range(200)))
        assert statuses.count(202) == 5, statuses
        assert statuses.count(429) == 195
        listed = api.get("/v1/executions", params={"limit": 100}, headers=bearer(KEY_A)).json()["items"]
        assert len(listed) == 5  # nothing refused left a record behind


def test_a_key_has_a_budget_of_stored_bytes(tmp_path):
    with private_api(
        tmp_path, api_keys=f"{KEY_A},{KEY_B}", max_stored_bytes_per_key=3 * MiB, rate_limit_per_minute=0
    ) as api:
        big = {"code": "print(1)", "stdin": "x" * MiB}
        assert [api.post("/v1/executions", json=big, headers=bearer(KEY_A)).status_code for _ in range(2)] == [202, 202]
        refused = api.post("/v1/executions", json=big, headers=bearer(KEY_A))
        assert refused.status_code == 429
        assert "budget" in refused.json()["detail"] and refused.headers["retry-after"]
        # Small ones still fit; another key has a budget of its own.
        assert api.post("/v1/executions", json={"code": "print(1)"}, headers=bearer(KEY_A)).status_code == 202
        assert api.post("/v1/executions", json=big, headers=bearer(KEY_B)).status_code == 202


def test_a_flood_is_refused_before_the_store_fills_and_other_keys_keep_their_records(tmp_path):
    # Redis bounded as the chart runs it: maxmemory with noeviction, so it refuses writes rather than dying or
    # forgetting. The API stops admitting at its high-water mark, before that point.
    options = ("--maxmemory", "48mb", "--maxmemory-policy", "noeviction")
    with private_api(
        tmp_path,
        worker=True,
        redis_options=options,
        api_keys=f"{KEY_A},{KEY_B}",
        rate_limit_per_minute=0,
        max_active_per_key=0,
        max_queued=0,
    ) as api:
        keep = api.post("/v1/executions", params={"wait": 20}, json={"code": "print('kept')"}, headers=bearer(KEY_B))
        assert keep.status_code == 200 and keep.json()["stdout"] == "kept\n"
        flood = {"code": "import time\ntime.sleep(5)", "stdin": "x" * MiB}
        statuses = []
        for _ in range(80):  # far past 48 MiB if nothing refused
            statuses.append(api.post("/v1/executions", json=flood, headers=bearer(KEY_A)).status_code)
            if statuses[-1] != 202:
                break
        assert statuses[-1] in (429, 503), statuses
        assert statuses.count(202) < 48
        client = redis.Redis.from_url(api.redis_url)
        info = client.info("memory")
        assert info["used_memory"] < info["maxmemory"]
        # Redis is alive, the other key's record is intact, and the store still takes results and new work.
        assert api.get(f"/v1/executions/{keep.json()['id']}", headers=bearer(KEY_B)).json()["stdout"] == "kept\n"
        assert api.get("/healthz").status_code == 200
