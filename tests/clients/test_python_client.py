"""The Python client distribution (clients/python) against the real stack: API, Redis, worker, local sandbox."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.private import private_api
from helpers.stack import REPO

# `make venv` installs the server's distribution only; the client is its own distribution (clients/python), so
# the tests import it from its source tree. test_installs_with_httpx_only installs it for real into a fresh venv.
CLIENT_SRC = REPO / "clients" / "python" / "src"
sys.path.insert(0, str(CLIENT_SRC))

from executioner_client import (  # noqa: E402 - needs the path above
    Artifact,
    AsyncClient,
    Client,
    Conflict,
    Event,
    Execution,
    ExecutionerError,
    ExecutionSummary,
    Gone,
    Limits,
    NotFound,
    Package,
    Page,
    Runtime,
    Status,
    Unauthorized,
)

KEY = "client-test-key-0123456789abcdef"


@pytest.fixture
def client(stack):
    with Client(stack.url) as client:
        yield client


def test_run_hello_world(client):
    execution = client.run("print('hello, world')")
    assert isinstance(execution, Execution)
    assert execution.status is Status.succeeded and execution.status.terminal
    assert execution.status == "succeeded"  # a str Enum
    assert execution.exit_code == 0
    assert execution.stdout == "hello, world\n" and execution.stderr == ""
    assert execution.code == "print('hello, world')"
    assert execution.limits == Limits(timeout_seconds=5.0, memory_mb=128)
    assert execution.backend == "local" and not execution.payload_expired
    assert execution.finished_at >= execution.started_at >= execution.created_at
    with pytest.raises(AttributeError):
        execution.stdout = "forged"  # frozen


def test_run_failing_program(client):
    execution = client.run("import sys\nprint('oops', file=sys.stderr)\nsys.exit(3)")
    assert execution.status is Status.failed
    assert execution.exit_code == 3
    assert execution.stderr == "oops\n"


def test_run_with_stdin_and_limits(client):
    execution = client.run("print(input()[::-1])", stdin="olleh", timeout=2, memory_mb=64)
    assert execution.status is Status.succeeded
    assert execution.stdout == "hello\n"
    assert execution.stdin == "olleh"
    assert execution.limits == Limits(timeout_seconds=2.0, memory_mb=64)


def test_submit_wait_get(client):
    submitted = client.submit("import time; time.sleep(0.5); print('done')")
    assert submitted.status in (Status.queued, Status.running) and not submitted.status.terminal
    finished = client.wait(submitted.id, timeout=30)
    assert finished.id == submitted.id
    assert finished.status is Status.succeeded and finished.stdout == "done\n"
    again = client.get(submitted.id)
    assert again == finished
    assert client.get(submitted.id, wait=100) == finished  # more than the server allows: capped, not refused


def test_cancel_long_sleeper(client):
    submitted = client.submit("import time; time.sleep(30)", timeout=40)
    started = time.monotonic()
    while client.get(submitted.id).status is Status.queued and time.monotonic() - started < 10:
        time.sleep(0.1)
    cancelled = client.cancel(submitted.id)
    assert cancelled.status is Status.cancelled
    assert client.wait(submitted.id, timeout=10).status is Status.cancelled
    with pytest.raises(Conflict) as info:
        client.cancel(submitted.id)
    assert info.value.status_code == 409


def test_list_returns_summaries(client):
    ids = [client.submit(f"print({n})").id for n in range(3)]
    for execution_id in ids:
        client.wait(execution_id, timeout=30)
    page = client.list(limit=2)
    assert isinstance(page, Page) and len(page.items) == 2 and page.next_cursor
    assert all(type(item) is ExecutionSummary for item in page.items)
    assert not hasattr(page.items[0], "stdout")
    seen = [item.id for item in page.items]
    seen += [item.id for item in client.list(limit=2, cursor=page.next_cursor).items]
    assert seen[:3] == ids[::-1]  # newest first


def test_unknown_execution_is_not_found(client):
    with pytest.raises(NotFound) as info:
        client.get("no-such-execution")
    assert info.value.status_code == 404


def test_errors_name_the_field(client):
    with pytest.raises(ExecutionerError) as too_large:
        client.run("#" * 70_000)
    assert too_large.value.status_code == 413 and too_large.value.field == "code"
    with pytest.raises(ExecutionerError) as too_long:
        client.submit("print(1)", timeout=3600)
    assert too_long.value.status_code == 422 and too_long.value.field == "limits.timeout_seconds"
    with pytest.raises(ExecutionerError) as unknown:
        client.submit("print(1)", network=True)  # extras are sent as they are, and refused by name
    assert unknown.value.status_code == 422 and unknown.value.field == "network"


def test_runtimes_lists_the_offered_runtimes(client):
    runtimes = {runtime.name: runtime for runtime in client.runtimes()}
    assert list(runtimes) == ["python", "python-data"] and runtimes["python"].default
    data = runtimes["python-data"]
    assert isinstance(data, Runtime) and data.python_version == "3.11" and not data.default
    assert {"numpy", "pandas", "matplotlib", "scipy"} <= {package.name for package in data.packages}
    assert all(isinstance(package, Package) and package.version for package in data.packages)


def test_async_client_runtimes_files_and_artifacts(stack):
    async def main():
        async with AsyncClient(stack.url) as client:
            code = "open('outputs/echo.txt', 'w').write(open('in/a.txt').read() * 2)"
            execution = await client.run(code, files={"in/a.txt": "ab"})
            return await client.runtimes(), execution, await client.artifact(execution.id, "echo.txt")

    runtimes, execution, echo = asyncio.run(main())
    assert [runtime.name for runtime in runtimes] == ["python", "python-data"]
    assert execution.status is Status.succeeded and execution.artifacts == (Artifact("echo.txt", 4, "text/plain"),)
    assert echo == b"abab"


def test_an_artifact_past_its_retention_is_gone(tmp_path):
    from executioner.store import ExecutionStore

    with private_api(tmp_path, worker=True) as api, Client(str(api.base_url)) as client:
        execution = client.run("open('outputs/x.txt', 'w').write('x')")
        assert client.artifact(execution.id, "x.txt") == b"x"
        store = ExecutionStore.from_url(api.redis_url, 3600, payload_retention_seconds=1)
        store.redis.zadd(store.FINISHED_KEY, {store.record_key(execution.id): 0})  # as if it finished long ago
        assert store.drop_expired_payloads() == 1
        store.redis.close()
        with pytest.raises(Gone) as gone:
            client.artifact(execution.id, "x.txt")
        assert gone.value.status_code == 410 and client.get(execution.id).payload_expired


def test_api_key_required_and_accepted(tmp_path):
    with private_api(tmp_path, worker=True, api_keys=KEY) as api:
        url = str(api.base_url)
        with Client(url) as anonymous, pytest.raises(Unauthorized) as info:
            anonymous.run("print(1)")
        assert info.value.status_code == 401
        with Client(url, api_key="wrong-key") as wrong, pytest.raises(Unauthorized):
            wrong.list()
        with Client(url, api_key=KEY) as keyed:
            execution = keyed.run("print('keyed')")
            assert execution.status is Status.succeeded and execution.stdout == "keyed\n"
            assert [item.id for item in keyed.list().items] == [execution.id]


def test_run_under_a_lower_max_wait(tmp_path):
    with private_api(tmp_path, worker=True, max_wait_seconds="2") as api, Client(str(api.base_url)) as client:
        started = time.monotonic()
        execution = client.run("import time; time.sleep(4); print('slept')", timeout=10)
        assert execution.status is Status.succeeded and execution.stdout == "slept\n"
        assert client.max_wait == 2.0  # learnt from the 422's ctx.le and remembered
        assert time.monotonic() - started < 15


def test_run_honours_retry_after(tmp_path):
    settings = {"rate_limit_per_minute": "60", "rate_limit_burst": "1"}
    with private_api(tmp_path, worker=True, **settings) as api, Client(str(api.base_url)) as client:
        refusals = []
        client._http.event_hooks["response"].append(
            lambda response: refusals.append(response.headers["retry-after"]) if response.status_code == 429 else None
        )
        assert api.post("/v1/executions", json={"code": "print(0)"}).status_code == 202  # empties the bucket
        first = client.run("print(1)")
        second = client.run("print(2)")
        assert (first.status, second.status) == (Status.succeeded, Status.succeeded)
        assert (first.stdout, second.stdout) == ("1\n", "2\n")
        assert refusals and all(float(seconds) > 0 for seconds in refusals)  # refused, slept, then accepted


def test_async_client_run(stack):
    async def main() -> tuple[Execution, Execution, Page]:
        async with AsyncClient(stack.url) as client:
            ran = await client.run("print(input())", stdin="async")
            submitted = await client.submit("print('later')")
            waited = await client.wait(submitted.id, timeout=30)
            return ran, waited, await client.list(limit=1)

    ran, waited, page = asyncio.run(main())
    assert ran.status is Status.succeeded and ran.stdout == "async\n"
    assert waited.stdout == "later\n" and page.items[0].id == waited.id


PROGRESS = "import time\nprint('first', flush=True)\ntime.sleep(2)\nprint('second', flush=True)"


def test_events_stream_output_live_and_end_with_the_document(client):
    submitted = client.submit(PROGRESS)
    started = time.monotonic()
    seen: list[tuple[float, Event]] = []
    for event in client.events(submitted.id):
        seen.append((time.monotonic() - started, event))
    kinds = [event.kind for _, event in seen]
    assert kinds[-1] == "result" and "running" in [e.data.get("status") for _, e in seen if e.kind == "status"]
    first = next(at for at, event in seen if event.kind == "stdout" and "first" in event.text)
    finished = seen[-1][0]
    assert finished - first >= 1.5, f"'first' arrived {first:.2f} s in, the end {finished:.2f} s: not live"
    execution = seen[-1][1].execution
    assert execution is not None and execution.status is Status.succeeded
    assert "".join(event.text for _, event in seen if event.kind == "stdout") == execution.stdout == "first\nsecond\n"


def test_events_resume_after_the_last_event_without_gaps_or_repeats(client):
    execution = client.run("import sys\nfor i in range(5):\n    print(i, flush=True)\nprint('err', file=sys.stderr)")
    everything = list(client.events(execution.id))
    for cut in range(1, len(everything)):  # as if the connection dropped after each event in turn
        rest = list(client.events(execution.id, last_event_id=everything[cut - 1].id))
        assert [e.id for e in everything[:cut] + rest] == [e.id for e in everything]
    with pytest.raises(NotFound):
        list(client.events("0" * 32))


def test_async_events(stack):
    async def main() -> list[Event]:
        async with AsyncClient(stack.url) as client:
            submitted = await client.submit("print('async live')")
            return [event async for event in client.events(submitted.id)]

    events = asyncio.run(main())
    assert events[-1].execution.stdout == "async live\n"
    assert "".join(e.text for e in events if e.kind == "stdout") == "async live\n"


def test_installs_with_httpx_only(tmp_path):
    venv = tmp_path / "venv"
    # A copy: setuptools builds in the source tree, and the checkout should not collect build/ and egg-info.
    source = shutil.copytree(
        REPO / "clients" / "python", tmp_path / "client", ignore=shutil.ignore_patterns("build", "*.egg-info")
    )
    # cwd: the checkout's operator/ folder must not shadow the standard library's operator module
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, cwd=tmp_path)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
        check=True,
        timeout=300,
        cwd=tmp_path,
    )
    probe = (
        "import importlib.metadata, json, sys\n"
        "import executioner_client\n"
        "print(json.dumps({'requires': importlib.metadata.requires('executioner-client'),\n"
        "                  'file': executioner_client.__file__,\n"
        "                  'modules': sorted({name.split('.')[0] for name in sys.modules})}))\n"
    )
    # -I: neither the repository nor the test's sys.path leaks into the fresh interpreter
    result = subprocess.run([python, "-I", "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path)
    found = json.loads(result.stdout)
    assert [requirement.split(">")[0].split("=")[0].strip() for requirement in found["requires"]] == ["httpx"]
    assert Path(found["file"]).is_relative_to(venv)
    assert not {"fastapi", "celery", "kopf", "kubernetes", "executioner", "pydantic", "redis"} & set(found["modules"])
