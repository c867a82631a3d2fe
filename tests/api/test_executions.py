"""The HTTP API against the real stack: contract, validation, waiting, listing and cancellation."""

from __future__ import annotations

import time
import uuid

import pytest

from helpers.programs import new_marker, processes_with, sleeper, wait_until


def submit(api, code="print('hi')", **extra):
    return api.post("/v1/executions", json={"code": code, **extra})


def wait_for_status(api, execution_id, wanted, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        doc = api.get(f"/v1/executions/{execution_id}").json()
        if doc["status"] in wanted:
            return doc
        time.sleep(0.05)
    raise AssertionError(f"{execution_id} never reached {wanted}: {doc}")


def test_post_answers_202_with_location_and_document(api):
    response = submit(api)
    assert response.status_code == 202
    doc = response.json()
    assert response.headers["location"] == f"/v1/executions/{doc['id']}"
    assert doc["status"] in ("queued", "running", "succeeded")
    expected = {
        "id",
        "status",
        "created_at",
        "started_at",
        "finished_at",
        "duration_ms",
        "exit_code",
        "stdout",
        "stderr",
        "stdout_truncated",
        "stderr_truncated",
        "error",
        "limits",
        "backend",
    }
    assert expected <= set(doc)
    assert doc["limits"] == {"timeout_seconds": 5.0, "memory_mb": 128}
    assert doc["backend"] == "local"
    finished = api.get(response.headers["location"], params={"wait": 20}).json()
    assert finished["status"] == "succeeded" and finished["stdout"] == "hi\n"


def test_wait_answers_200_with_the_finished_document(api):
    started = time.monotonic()
    response = api.post("/v1/executions", params={"wait": 20}, json={"code": "print(6 * 7)"})
    assert response.status_code == 200
    assert response.json()["stdout"] == "42\n"
    assert time.monotonic() - started < 10


def test_wait_gives_up_with_202_while_still_running(api):
    started = time.monotonic()
    response = api.post(
        "/v1/executions",
        params={"wait": 1},
        json={"code": "import time\ntime.sleep(3)", "limits": {"timeout_seconds": 10}},
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    assert response.json()["status"] in ("queued", "running")
    assert 0.9 <= elapsed < 2.5


def test_get_unknown_execution_is_404(api):
    response = api.get(f"/v1/executions/{uuid.uuid4().hex}")
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


def test_list_is_newest_first_and_paginated(api):
    ids = [submit(api, f"print({i})").json()["id"] for i in range(3)]
    page = api.get("/v1/executions", params={"limit": 2}).json()
    assert [item["id"] for item in page["items"]] == ids[::-1][:2]
    assert page["next_cursor"] == "2"
    following = api.get("/v1/executions", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert following["items"][0]["id"] == ids[0]


def test_list_items_are_summaries_that_stay_small(api):
    doc = api.post("/v1/executions", params={"wait": 20}, json={"code": "print('x' * 60000)", "stdin": "y" * 500000})
    assert doc.status_code == 200 and len(doc.json()["stdout"]) == 60001
    page = api.get("/v1/executions", params={"limit": 1})
    (item,) = page.json()["items"]
    assert item["id"] == doc.json()["id"] and item["status"] == "succeeded" and item["exit_code"] == 0
    assert not {"code", "stdin", "stdout", "stderr"} & set(item)
    assert len(page.content) < 2000  # one page of 20 stays a few KiB, whatever the programs printed
    assert item["limits"] == doc.json()["limits"] and item["duration_ms"] == doc.json()["duration_ms"]


def error_locations(response):
    return [tuple(error["loc"]) for error in response.json()["detail"]]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({}, ("body", "code")),
        ({"code": ""}, ("body", "code")),
        ({"code": 5}, ("body", "code")),
        ({"code": "print(1)", "language": "ruby"}, ("body", "language")),
        ({"code": "print(1)", "stdin": ["a"]}, ("body", "stdin")),
        ({"code": "print(1)", "limits": {"timeout_seconds": 0}}, ("body", "limits", "timeout_seconds")),
        ({"code": "print(1)", "limits": {"timeout_seconds": 61}}, ("body", "limits", "timeout_seconds")),
        ({"code": "print(1)", "limits": {"timeout_seconds": "5"}}, ("body", "limits", "timeout_seconds")),
        ({"code": "print(1)", "limits": {"memory_mb": 8}}, ("body", "limits", "memory_mb")),
        ({"code": "print(1)", "limits": {"memory_mb": 4096}}, ("body", "limits", "memory_mb")),
        ({"code": "print(1)", "limits": {"memory_mb": 1.5}}, ("body", "limits", "memory_mb")),
        ({"code": "print(1)", "limits": {"cpu": 2}}, ("body", "limits", "cpu")),
        ({"code": "print(1)", "limits": 5}, ("body", "limits")),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(api, body, location):
    response = api.post("/v1/executions", json=body)
    assert response.status_code == 422, response.text
    assert location in error_locations(response)


def test_malformed_json_is_422(api):
    response = api.post("/v1/executions", content=b'{"code": ', headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_code_over_the_limit_is_413_naming_code(api):
    response = submit(api, "#" * (64 * 1024 + 1))
    assert response.status_code == 413
    assert error_locations(response) == [("body", "code")]


def test_code_at_the_limit_is_accepted(api):
    code = "pass\n" + "#" * (64 * 1024 - 6) + "\n"
    assert len(code.encode()) == 64 * 1024
    assert submit(api, code).status_code == 202


def test_stdin_over_the_limit_is_413_naming_stdin(api):
    response = submit(api, stdin="x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert error_locations(response) == [("body", "stdin")]


def test_huge_body_is_413_before_parsing(api):
    response = api.post(
        "/v1/executions", content=b"[" * (20 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("params", "location"),
    [({"wait": 31}, ("query", "wait")), ({"wait": -1}, ("query", "wait")), ({"wait": "soon"}, ("query", "wait"))],
)
def test_invalid_wait_is_422(api, params, location):
    response = api.post("/v1/executions", params=params, json={"code": "print(1)"})
    assert response.status_code == 422
    assert location in error_locations(response)


@pytest.mark.parametrize(
    ("params", "location"),
    [({"limit": 0}, ("query", "limit")), ({"limit": 101}, ("query", "limit")), ({"cursor": "x"}, ("query", "cursor"))],
)
def test_invalid_list_parameters_are_422(api, params, location):
    response = api.get("/v1/executions", params=params)
    assert response.status_code == 422
    assert location in error_locations(response)


def test_cancel_a_running_execution_stops_its_sandbox(api):
    marker = new_marker("cancel")
    doc = submit(api, sleeper(marker), limits={"timeout_seconds": 30}).json()
    assert wait_until(lambda: processes_with(marker), 20)
    response = api.delete(f"/v1/executions/{doc['id']}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert wait_until(lambda: not processes_with(marker), 5)
    time.sleep(0.5)  # the worker's own result must not overwrite the cancellation
    final = api.get(f"/v1/executions/{doc['id']}").json()
    assert final["status"] == "cancelled"
    assert final["finished_at"]


def test_cancel_a_queued_execution(api):
    # Fill every worker slot, then queue one more and cancel it before it starts.
    sleepers = [
        submit(api, "import time\ntime.sleep(4)", limits={"timeout_seconds": 10}).json()["id"] for _ in range(4)
    ]
    queued = submit(api, "print('never')").json()
    response = api.delete(f"/v1/executions/{queued['id']}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    for execution_id in sleepers:
        api.delete(f"/v1/executions/{execution_id}")
    final = api.get(f"/v1/executions/{queued['id']}", params={"wait": 5}).json()
    assert final["status"] == "cancelled"
    assert final["stdout"] == ""


def test_cancel_a_finished_execution_is_409(api):
    doc = api.post("/v1/executions", params={"wait": 20}, json={"code": "print(1)"}).json()
    assert doc["status"] == "succeeded"
    response = api.delete(f"/v1/executions/{doc['id']}")
    assert response.status_code == 409
    assert "already finished" in response.json()["detail"]


def test_cancel_unknown_is_404(api):
    assert api.delete(f"/v1/executions/{uuid.uuid4().hex}").status_code == 404


def test_healthz_and_openapi(api):
    assert api.get("/healthz").json() == {"status": "ok", "backend": "local", "store": "ok"}
    schema = api.get("/openapi.json").json()
    assert {"/v1/executions", "/v1/executions/{execution_id}", "/healthz"} <= set(schema["paths"])
    assert api.get("/docs").status_code == 200
