"""Waiting for a result costs no thread: hundreds of `?wait` requests leave the API responsive, and each key's
waiters are capped. Against a real API and Redis, with no worker (so executions stay queued until the test ends them)."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx

from helpers.private import private_api


async def wait_many_and_probe_health(url: str, execution_id: str, waiters: int) -> tuple[list[int], list[float]]:
    limits = httpx.Limits(max_connections=waiters + 10, max_keepalive_connections=waiters + 10)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        waiting = [
            asyncio.create_task(client.get(f"/v1/executions/{execution_id}", params={"wait": 30}))
            for _ in range(waiters)
        ]
        await asyncio.sleep(2)  # let every waiter reach the API and start waiting
        latencies = []
        for _ in range(20):
            started = time.perf_counter()
            assert (await client.get("/healthz")).status_code == 200
            latencies.append(time.perf_counter() - started)
        assert not any(task.done() for task in waiting), "waiters returned before the execution ended"
        # Ending the execution wakes every waiter at once.
        await client.delete(f"/v1/executions/{execution_id}")
        responses = await asyncio.wait_for(asyncio.gather(*waiting), 20)
        return [r.status_code for r in responses], latencies


def test_five_hundred_waiters_leave_health_answering_quickly(tmp_path):
    with private_api(tmp_path, max_waiters_per_key=1000, rate_limit_per_minute=0) as api:
        execution_id = api.post("/v1/executions", json={"code": "print(1)"}).json()["id"]
        started = time.monotonic()
        statuses, latencies = asyncio.run(wait_many_and_probe_health(str(api.base_url), execution_id, 500))
        assert statuses == [200] * 500
        assert time.monotonic() - started < 25  # they were woken by the cancellation, not by their timeout
        print(
            f"/healthz with 500 waiters: median {statistics.median(latencies) * 1000:.1f} ms, "
            f"max {max(latencies) * 1000:.1f} ms"
        )
        assert statistics.median(latencies) < 0.1
        assert api.get(f"/v1/executions/{execution_id}").json()["status"] == "cancelled"


def test_waiters_per_key_are_capped(tmp_path):
    with private_api(tmp_path, max_waiters_per_key=2, rate_limit_per_minute=0) as api:
        execution_id = api.post("/v1/executions", json={"code": "print(1)"}).json()["id"]

        async def scenario() -> tuple[list[int], int, int]:
            async with httpx.AsyncClient(base_url=str(api.base_url), timeout=30) as client:
                waiting = [
                    asyncio.create_task(client.get(f"/v1/executions/{execution_id}", params={"wait": 20}))
                    for _ in range(2)
                ]
                await asyncio.sleep(1)
                third = await client.get(f"/v1/executions/{execution_id}", params={"wait": 20})
                post = await client.post("/v1/executions", params={"wait": 5}, json={"code": "print(2)"})
                plain = await client.get(f"/v1/executions/{execution_id}")  # no wait: no slot needed
                await client.delete(f"/v1/executions/{execution_id}")
                done = await asyncio.gather(*waiting)
                assert plain.status_code == 200
                return [r.status_code for r in done], third.status_code, post.status_code

        waited, third, post = asyncio.run(scenario())
        assert waited == [200, 200]
        assert third == 429 and post == 429
        # The refused POST created nothing.
        assert len(api.get("/v1/executions").json()["items"]) == 1
