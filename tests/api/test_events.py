"""GET /v1/executions/{id}/events: status and output live, as Server-Sent Events, against the real stack (API, Redis,
worker, bubblewrap sandbox). The Kubernetes backend's part is in tests/backends/test_live_output_kubernetes.py."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from helpers.private import private_api
from helpers.sse import follow, joined

PROGRESS = "import time\nprint('first line', flush=True)\ntime.sleep(2)\nprint('second line')\n"


def submit(api: httpx.Client, code: str, **limits) -> str:
    response = api.post("/v1/executions", json={"code": code, "limits": {"timeout_seconds": 10, **limits}})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_the_first_line_arrives_while_the_program_still_runs(api):
    execution_id = submit(api, PROGRESS)
    events = []
    status_when_first_line_arrived = None
    for event in follow(api, execution_id):
        events.append(event)
        if event.event == "stdout" and status_when_first_line_arrived is None:
            assert event.data["data"].startswith("first line")
            status_when_first_line_arrived = api.get(f"/v1/executions/{execution_id}").json()["status"]
    assert status_when_first_line_arrived == "running"
    kinds = [event.event for event in events]
    assert [e.data["status"] for e in events if e.event == "status"] == ["queued", "running", "succeeded"]
    assert kinds[-2:] == ["status", "result"]
    result = events[-1].data
    assert result["id"] == execution_id and result["status"] == "succeeded"
    # The document is exactly what the stream carried.
    assert joined(events, "stdout") == result["stdout"] == "first line\nsecond line\n"
    assert result == api.get(f"/v1/executions/{execution_id}").json()


def test_stdout_and_stderr_arrive_separately_and_whole(api):
    code = "import sys\nprint('é' * 3000)\nsys.stderr.write('oops\\n' * 100)\nprint('end')\nraise SystemExit(3)\n"
    execution_id = submit(api, code)
    events = list(follow(api, execution_id))
    result = events[-1].data
    assert result["status"] == "failed" and result["exit_code"] == 3
    assert joined(events, "stdout") == result["stdout"] == "é" * 3000 + "\nend\n"
    assert joined(events, "stderr") == result["stderr"] == "oops\n" * 100


def test_a_late_subscriber_gets_everything_then_the_end(api):
    execution_id = submit(api, "print('done early')")
    api.get(f"/v1/executions/{execution_id}", params={"wait": 20})
    events = list(follow(api, execution_id))
    assert [e.data["status"] for e in events if e.event == "status"] == ["queued", "running", "succeeded"]
    assert joined(events, "stdout") == "done early\n" and events[-1].event == "result"


def test_resuming_after_every_event_gives_every_byte_exactly_once(api):
    code = "import time\nfor i in range(6):\n    print(f'line {i}', flush=True)\n    time.sleep(0.3)\n"
    execution_id = submit(api, code)
    received, last_id = [], None
    while not received or received[-1].event != "result":
        # Drop the connection after each event and come back with Last-Event-ID, as a browser would.
        event = next(follow(api, execution_id, last_id))
        received.append(event)
        last_id = event.id
    ids = [e.id for e in received[:-1]]
    assert len(ids) == len(set(ids)), "an event came twice"
    assert joined(received, "stdout") == "".join(f"line {i}\n" for i in range(6)) == received[-1].data["stdout"]


def test_a_flood_is_capped_and_flagged(api):
    execution_id = submit(api, "import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 10000)\n")
    events = list(follow(api, execution_id))
    result = events[-1].data
    streamed = joined(events, "stdout")
    assert result["stdout_truncated"] is True
    assert streamed == result["stdout"] and len(streamed) == 64 * 1024
    flagged = [e for e in events if e.event == "stdout" and e.data.get("truncated")]
    assert len(flagged) == 1 and flagged[0] is [e for e in events if e.event == "stdout"][-1]


def test_unknown_execution_and_bad_resume_point_are_refused(api):
    assert api.get("/v1/executions/nope/events").status_code == 404
    execution_id = submit(api, "print(1)")
    response = api.get(f"/v1/executions/{execution_id}/events", headers={"Last-Event-ID": "yesterday"})
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["header", "last-event-id"]


def test_another_keys_execution_is_not_found(tmp_path):
    with private_api(tmp_path, api_keys="alice-key,bob-key") as api:
        alice, bob = {"Authorization": "Bearer alice-key"}, {"Authorization": "Bearer bob-key"}
        execution_id = api.post("/v1/executions", json={"code": "print(1)"}, headers=alice).json()["id"]
        assert api.get(f"/v1/executions/{execution_id}/events", headers=bob).status_code == 404
        assert api.get(f"/v1/executions/{execution_id}/events").status_code == 401
        with api.stream("GET", f"/v1/executions/{execution_id}/events", headers=alice) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            first = next(response.iter_lines())
            assert first == "event: status"


async def follow_many_and_probe_health(url: str, execution_ids: list[str]) -> tuple[list[str], list[float]]:
    limits = httpx.Limits(max_connections=150, max_keepalive_connections=150)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def follow_one(execution_id: str) -> str:
            async with client.stream("GET", f"/v1/executions/{execution_id}/events") as response:
                last_data = ""
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        last_data = line.removeprefix("data: ")
                return json.loads(last_data)["status"]

        streams = [asyncio.create_task(follow_one(execution_ids[i % len(execution_ids)])) for i in range(100)]
        await asyncio.sleep(1)
        latencies = []
        for _ in range(10):
            started = time.perf_counter()
            assert (await client.get("/healthz")).status_code == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.1)
        assert not all(task.done() for task in streams), "the streams ended before the programs did"
        return await asyncio.wait_for(asyncio.gather(*streams), 60), latencies


@pytest.mark.timeout(180)
def test_a_hundred_streams_do_not_stall_the_api(tmp_path):
    code = "import time\nfor i in range(4):\n    print(i, flush=True)\n    time.sleep(1)\n"
    with private_api(tmp_path, worker=True, max_waiters_per_key=200, rate_limit_per_minute=0) as api:
        execution_ids = [submit(api, code) for _ in range(4)]
        statuses, latencies = asyncio.run(follow_many_and_probe_health(str(api.base_url), execution_ids))
    assert statuses == ["succeeded"] * 100
    print(f"/healthz with 100 streams open: worst {max(latencies) * 1000:.1f} ms")
    assert max(latencies) < 1.0  # health answers while every stream is open, not after


def test_open_streams_count_against_the_keys_waiting_slots(tmp_path):
    with private_api(tmp_path, worker=True, max_waiters_per_key=1, rate_limit_per_minute=0) as api:
        execution_id = submit(api, "import time\ntime.sleep(3)\nprint('done')\n")
        with api.stream("GET", f"/v1/executions/{execution_id}/events") as first:
            assert first.status_code == 200
            lines = first.iter_lines()
            next(lines)  # the stream is open and holds the key's one slot
            second = api.get(f"/v1/executions/{execution_id}/events")
            assert second.status_code == 429 and second.headers["retry-after"] == "1"
            for _ in lines:  # read to the end: the slot goes with the stream
                pass
        events = list(follow(api, execution_id))
        assert events[-1].event == "result" and events[-1].data["stdout"] == "done\n"


def test_an_execution_request_is_streamed_like_any_other(stack, store):
    """What the operator submits for an ExecutionRequest (owner `k8s:<namespace>`, no API key) gets the same event
    stream: the machinery does not care who submitted. No API key owns it, so the route answers 404."""
    from executioner.admission import Admission
    from executioner.events import ExecutionEvents
    from executioner.queue import ExecutionQueue
    from executioner.settings import Settings
    from executioner.submission import Submitter

    settings = Settings(_env_file=None, redis_url=stack.env["EXECUTIONER_REDIS_URL"])
    queue = ExecutionQueue(settings)
    try:
        submitter = Submitter(store, queue, settings, Admission(store, settings))
        execution = submitter.submit(owner="k8s:team-a", code=PROGRESS, limits={"timeout_seconds": 10})
    finally:
        queue.close()

    async def follow_it() -> list:
        events = ExecutionEvents(settings.redis_url)
        await events.start()
        try:
            return [event async for event in events.follow(execution.id)]
        finally:
            await events.close()

    events = asyncio.run(follow_it())
    chunks = [json.loads(e.data)["data"] for e in events if e.event == "stdout"]
    assert events[-1].event == "result"
    assert "".join(chunks) == json.loads(events[-1].data)["stdout"] == "first line\nsecond line\n"
    with httpx.Client(base_url=stack.url) as api:
        assert api.get(f"/v1/executions/{execution.id}/events").status_code == 404


def test_a_subscriber_that_never_reads_holds_up_nothing(api, stack):
    """A client that opens the stream of a flood and then reads nothing: the program, the worker and other streams
    carry on (the worker writes to Redis, never to a subscriber)."""
    import socket
    from urllib.parse import urlsplit

    code = (
        "import sys\nfor i in range(300):\n    sys.stdout.write(f'{i:09d}\\n' * 100)\n    sys.stderr.write('e' * 100)\n"
    )
    flood = submit(api, code)
    address = urlsplit(stack.url)
    stalled = socket.create_connection((address.hostname, address.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        stalled.sendall(f"GET /v1/executions/{flood}/events HTTP/1.1\r\nHost: {address.netloc}\r\n\r\n".encode())
        finished = api.get(f"/v1/executions/{flood}", params={"wait": 20}).json()
        assert finished["status"] == "succeeded" and finished["stdout_truncated"] is True
        other = submit(api, "print('not held up')")
        events = list(follow(api, other))
        assert events[-1].data["stdout"] == "not held up\n"
    finally:
        stalled.close()
