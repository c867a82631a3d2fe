"""Runtimes, input files and artifacts through the real API and Redis.

Artifacts are served from what the store holds: these tests record an outcome of their own choosing through the
store (as a worker does), so every serving rule is checked on exact bytes; test_data_runtime.py runs real programs.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from urllib.parse import quote

import pytest

from executioner.models import ArtifactContent, Outcome, Status
from executioner.runtimes import RUNTIMES
from executioner.store import ExecutionStore
from helpers.private import private_api

KEY_A, KEY_B = "key-a-" + uuid.uuid4().hex, "key-b-" + uuid.uuid4().hex
A, B = {"Authorization": f"Bearer {KEY_A}"}, {"Authorization": f"Bearer {KEY_B}"}
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
HTML = b"<script>alert(document.domain)</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
ARTIFACT_CSP = "default-src 'none'; sandbox"


def encoded(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """An API with two keys and no worker: the tests play the worker through the store."""
    with private_api(tmp_path_factory.mktemp("artifacts"), api_keys=f"{KEY_A},{KEY_B}") as client:
        yield client


@pytest.fixture(scope="module")
def worker_store(keyed):
    """The store as a worker sees it, its payloads kept 2 s (the API never writes them)."""
    store = ExecutionStore.from_url(keyed.redis_url, 3600, payload_retention_seconds=2)
    yield store
    store.redis.close()


def finished(api, store: ExecutionStore, artifacts: dict[str, bytes], body: dict | None = None) -> dict:
    """An execution submitted through the API whose outcome left `artifacts`; returns its document."""
    response = api.post("/v1/executions", json=body or {"code": "print(1)"}, headers=A)
    assert response.status_code == 202, response.text
    execution_id = response.json()["id"]
    assert store.transition(execution_id, Status.running, lease_owner="test", lease_seconds=60)
    outcome = Outcome(
        status=Status.succeeded,
        exit_code=0,
        artifacts=[ArtifactContent(path=path, content_base64=encoded(data)) for path, data in artifacts.items()],
    )
    assert store.record_outcome(execution_id, outcome)
    return api.get(f"/v1/executions/{execution_id}", headers=A).json()


def error(response) -> tuple[list[tuple], str]:
    detail = response.json()["detail"]
    return [tuple(e["loc"]) for e in detail], " ".join(e["msg"] for e in detail)


def test_runtimes_lists_each_runtime_with_its_python_and_pinned_packages(keyed):
    response = keyed.get("/v1/runtimes", headers=A)
    assert response.status_code == 200
    runtimes = {runtime["name"]: runtime for runtime in response.json()}
    assert list(runtimes) == ["python", "python-data"]
    assert runtimes["python"]["default"] and not runtimes["python-data"]["default"]
    assert runtimes["python"]["packages"] == [] and runtimes["python"]["python_version"] == "3.11"
    packages = {p["name"]: p["version"] for p in runtimes["python-data"]["packages"]}
    assert {"numpy", "pandas", "matplotlib", "scipy"} <= set(packages)
    assert packages == dict(RUNTIMES["python-data"].packages)  # exactly the lock file's pins
    assert keyed.get("/v1/runtimes").status_code == 401


def test_runtimes_lists_only_the_offered_ones(tmp_path):
    with private_api(tmp_path, runtimes="python") as api:
        assert [runtime["name"] for runtime in api.get("/v1/runtimes").json()] == ["python"]
        response = api.post("/v1/executions", json={"code": "print(1)", "runtime": "python-data"})
        assert response.status_code == 422 and ("body", "runtime") in error(response)[0]


def test_an_unknown_runtime_is_422_naming_runtime(keyed):
    response = keyed.post("/v1/executions", json={"code": "print(1)", "runtime": "ruby"}, headers=A)
    assert response.status_code == 422
    assert ("body", "runtime") in error(response)[0]


def test_runtime_and_files_are_recorded_and_a_data_runtime_gets_more_memory(keyed):
    files = [{"path": "data.csv", "content_base64": encoded(b"x,y\n1,2\n")}]
    body = {"code": "print(1)", "runtime": "python-data", "files": files}
    document = keyed.post("/v1/executions", json=body, headers=A).json()
    assert document["runtime"] == "python-data" and document["files"] == files
    assert document["limits"]["memory_mb"] == RUNTIMES["python-data"].default_memory_mb
    chosen = keyed.post("/v1/executions", json={**body, "limits": {"memory_mb": 200}}, headers=A).json()
    assert chosen["limits"]["memory_mb"] == 200
    listed = keyed.get("/v1/executions", params={"limit": 1}, headers=A).json()["items"][0]
    assert listed["runtime"] == "python-data" and "files" not in listed


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../b", "outputs/x", "a//b", "./a", "", "a\\b"])
def test_a_file_path_that_could_leave_the_working_directory_is_422_naming_the_file(keyed, path):
    files = [{"path": "ok.txt", "content_base64": ""}, {"path": path, "content_base64": encoded(b"x")}]
    response = keyed.post("/v1/executions", json={"code": "print(1)", "files": files}, headers=A)
    assert response.status_code == 422, response.text
    locations, message = error(response)
    assert locations == [("body", "files", 1, "path")]
    assert repr(path) in message


def test_repeated_or_clashing_paths_are_422(keyed):
    for paths in (["a.txt", "a.txt"], ["a", "a/b.txt"]):
        files = [{"path": path, "content_base64": ""} for path in paths]
        response = keyed.post("/v1/executions", json={"code": "print(1)", "files": files}, headers=A)
        assert response.status_code == 422 and error(response)[0] == [("body", "files", 1, "path")]


def test_content_that_is_not_base64_is_422_naming_the_file(keyed):
    files = [{"path": "data.bin", "content_base64": "not base64!"}]
    response = keyed.post("/v1/executions", json={"code": "print(1)", "files": files}, headers=A)
    assert response.status_code == 422
    locations, message = error(response)
    assert locations == [("body", "files", 0, "content_base64")] and "'data.bin'" in message


def test_an_oversize_file_is_413_naming_it(keyed):
    files = [
        {"path": "small.txt", "content_base64": ""},
        {"path": "big.bin", "content_base64": encoded(b"x" * 1000001)},
    ]
    response = keyed.post("/v1/executions", json={"code": "print(1)", "files": files}, headers=A)
    assert response.status_code == 413
    locations, message = error(response)
    assert locations == [("body", "files", 1, "content_base64")] and "'big.bin'" in message


def test_files_over_the_total_are_413_naming_the_file_past_it(keyed):
    files = [{"path": f"part{i}.bin", "content_base64": encoded(b"x" * 1000000)} for i in range(3)]
    response = keyed.post("/v1/executions", json={"code": "print(1)", "files": files}, headers=A)
    assert response.status_code == 413
    locations, message = error(response)
    assert locations == [("body", "files", 2, "content_base64")]
    assert "'part2.bin'" in message and "together" in message


def test_too_many_files_is_422(keyed):
    files = [{"path": f"f{i}.txt", "content_base64": ""} for i in range(9)]
    response = keyed.post("/v1/executions", json={"code": "print(1)", "files": files}, headers=A)
    assert response.status_code == 422
    assert error(response)[0] == [("body", "files")]


def test_the_largest_valid_body_is_accepted(keyed):
    """Code and stdin at their limits in characters JSON escapes six-fold, and files at their total."""
    body = {
        "code": "#" + "\x01" * (64 * 1024 - 2) + "\n",
        "stdin": "\x01" * (1024 * 1024),
        "files": [{"path": f"in/{i}.bin", "content_base64": encoded(b"\xff" * 1000000)} for i in range(2)],
    }
    content = json.dumps(body).encode()
    assert len(content) > 8 * 1024 * 1024  # beyond a limit that counts code and stdin alone
    response = keyed.post("/v1/executions", content=content, headers={**A, "content-type": "application/json"})
    assert response.status_code == 202, response.text[:500]


def test_artifacts_are_listed_and_a_raster_image_is_served_inline_as_itself(keyed, worker_store):
    document = finished(keyed, worker_store, {"plot.png": PNG, "tables/out.csv": b"a,b\n"})
    assert document["artifacts"] == [
        {"path": "plot.png", "size": len(PNG), "content_type": "image/png"},
        {"path": "tables/out.csv", "size": 4, "content_type": "text/csv"},
    ]
    assert document["artifacts_truncated"] is False
    response = keyed.get(f"/v1/executions/{document['id']}/artifacts/plot.png", headers=A)
    assert response.status_code == 200 and response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"].startswith("inline;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers.get_list("content-security-policy") == [ARTIFACT_CSP]
    csv = keyed.get(f"/v1/executions/{document['id']}/artifacts/tables/out.csv", headers=A)
    assert csv.content == b"a,b\n" and csv.headers["content-type"] == "text/csv"
    assert csv.headers["content-disposition"] == "attachment; filename=\"out.csv\"; filename*=UTF-8''out.csv"


@pytest.mark.parametrize(("path", "data"), [("page.html", HTML), ("drawing.svg", SVG), ("x.xml", SVG), ("a.js", HTML)])
def test_a_document_a_browser_could_render_is_an_opaque_attachment(keyed, worker_store, path, data):
    document = finished(keyed, worker_store, {path: data})
    response = keyed.get(f"/v1/executions/{document['id']}/artifacts/{path}", headers=A)
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith(f'attachment; filename="{path}"')
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers.get_list("content-security-policy") == [ARTIFACT_CSP]


def test_a_hostile_file_name_becomes_a_safe_download_name(keyed, worker_store):
    path = 'we"ird name;é.html'
    document = finished(keyed, worker_store, {path: HTML})
    response = keyed.get(f"/v1/executions/{document['id']}/artifacts/{quote(path)}", headers=A)
    assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"we_ird_name__.html\"; filename*=UTF-8''we%22ird%20name%3B%C3%A9.html"
    )


def test_artifacts_are_the_owners_only(keyed, worker_store):
    document = finished(keyed, worker_store, {"plot.png": PNG})
    url = f"/v1/executions/{document['id']}/artifacts/plot.png"
    stranger = keyed.get(url, headers=B)
    assert stranger.status_code == 404 and "not found" in stranger.json()["detail"]
    assert keyed.get(url).status_code == 401
    unknown = keyed.get(f"/v1/executions/{document['id']}/artifacts/other.png", headers=A)
    assert unknown.status_code == 404 and "'other.png'" in unknown.json()["detail"]
    assert keyed.get(f"/v1/executions/{uuid.uuid4().hex}/artifacts/plot.png", headers=A).status_code == 404


def test_artifacts_are_gone_with_the_payload(keyed, worker_store):
    document = finished(keyed, worker_store, {"plot.png": PNG})
    url = f"/v1/executions/{document['id']}/artifacts/plot.png"
    assert keyed.get(url, headers=A).status_code == 200
    time.sleep(2.5)  # past the payload retention
    assert keyed.get(url, headers=A).status_code == 410  # expired by itself, before any sweep
    assert worker_store.drop_expired_payloads() >= 1
    response = keyed.get(url, headers=A)
    assert response.status_code == 410 and "EXECUTIONER_PAYLOAD_RETENTION_SECONDS" in response.json()["detail"]
    record = keyed.get(f"/v1/executions/{document['id']}", headers=A).json()
    assert record["payload_expired"] and record["artifacts"] == [] and record["files"] == []
