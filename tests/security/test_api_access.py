"""API keys, per-key isolation, rate limits, caps and request hardening, against a real API and Redis."""

from __future__ import annotations

import uuid

import pytest

from helpers.private import private_api

KEY_A, KEY_B = "key-a-" + uuid.uuid4().hex, "key-b-" + uuid.uuid4().hex


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def keyed_api(tmp_path_factory):
    with private_api(tmp_path_factory.mktemp("keyed"), worker=True, api_keys=f"{KEY_A},{KEY_B}") as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/executions"),
        ("GET", "/v1/executions"),
        ("GET", f"/v1/executions/{'0' * 32}"),
        ("DELETE", f"/v1/executions/{'0' * 32}"),
        ("GET", f"/v1/executions/{'0' * 32}/artifacts/plot.png"),
        ("GET", "/v1/runtimes"),
    ],
)
@pytest.mark.parametrize(
    "headers", [{}, bearer("wrong"), {"Authorization": f"Basic {KEY_A}"}, {"Authorization": KEY_A}]
)
def test_every_v1_route_needs_a_valid_key(keyed_api, method, path, headers):
    response = keyed_api.request(method, path, headers=headers, json={"code": "print(1)"} if method == "POST" else None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_health_needs_no_key(keyed_api):
    assert keyed_api.get("/healthz").status_code == 200


def test_a_key_sees_only_its_own_executions(keyed_api):
    mine = keyed_api.post("/v1/executions", params={"wait": 20}, json={"code": "print('a')"}, headers=bearer(KEY_A))
    assert mine.status_code == 200 and mine.json()["stdout"] == "a\n"
    execution_id = mine.json()["id"]
    assert keyed_api.get(f"/v1/executions/{execution_id}", headers=bearer(KEY_A)).status_code == 200
    assert keyed_api.get(f"/v1/executions/{execution_id}", headers=bearer(KEY_B)).status_code == 404
    assert keyed_api.delete(f"/v1/executions/{execution_id}", headers=bearer(KEY_B)).status_code == 404
    listed_b = keyed_api.get("/v1/executions", headers=bearer(KEY_B)).json()["items"]
    assert execution_id not in [item["id"] for item in listed_b]
    listed_a = keyed_api.get("/v1/executions", headers=bearer(KEY_A)).json()["items"]
    assert execution_id in [item["id"] for item in listed_a]


def test_keys_never_reach_the_logs_or_the_store(keyed_api):
    keyed_api.post("/v1/executions", params={"wait": 10}, json={"code": "print(1)"}, headers=bearer(KEY_A))
    keyed_api.get("/v1/executions", headers=bearer("not-a-key-" + KEY_B))
    for log in ("api.log", "worker.log"):
        text = (keyed_api.logs / log).read_text()
        assert KEY_A not in text and KEY_B not in text


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    with private_api(tmp_path, api_keys=f"{KEY_A},{KEY_B}", rate_limit_per_minute=6, rate_limit_burst=3) as api:
        statuses = [
            api.post("/v1/executions", json={"code": "print(1)"}, headers=bearer(KEY_A)).status_code for _ in range(3)
        ]
        assert statuses == [202, 202, 202]
        refused = api.post("/v1/executions", json={"code": "print(1)"}, headers=bearer(KEY_A))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 10
        assert "rate limit" in refused.json()["detail"]
        # Another key has a bucket of its own.
        assert api.post("/v1/executions", json={"code": "print(1)"}, headers=bearer(KEY_B)).status_code == 202


def test_active_executions_per_key_are_capped(tmp_path):
    # No worker: everything stays queued, so the cap is what refuses.
    with private_api(tmp_path, api_keys=f"{KEY_A},{KEY_B}", max_active_per_key=2) as api:
        first = [api.post("/v1/executions", json={"code": "print(1)"}, headers=bearer(KEY_A)) for _ in range(2)]
        assert [r.status_code for r in first] == [202, 202]
        refused = api.post("/v1/executions", json={"code": "print(1)"}, headers=bearer(KEY_A))
        assert refused.status_code == 429 and refused.headers["retry-after"]
        assert api.post("/v1/executions", json={"code": "print(1)"}, headers=bearer(KEY_B)).status_code == 202
        # Finishing one (here: cancelling it) frees a slot.
        assert api.delete(f"/v1/executions/{first[0].json()['id']}", headers=bearer(KEY_A)).status_code == 200
        assert api.post("/v1/executions", json={"code": "print(1)"}, headers=bearer(KEY_A)).status_code == 202


def test_a_full_queue_answers_503_instead_of_growing(tmp_path):
    with private_api(tmp_path, max_queued=3) as api:
        assert [api.post("/v1/executions", json={"code": "print(1)"}).status_code for _ in range(3)] == [202] * 3
        refused = api.post("/v1/executions", json={"code": "print(1)"})
        assert refused.status_code == 503
        assert refused.headers["retry-after"]
        assert "queue is full" in refused.json()["detail"]


def test_cors_is_off_unless_configured(tmp_path):
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    with private_api(tmp_path) as api:
        response = api.options("/v1/executions", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
    with private_api(tmp_path / "cors", cors_origins="https://ui.example") as api:
        allowed = api.options("/v1/executions", headers={**preflight, "Origin": "https://ui.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
        denied = api.options("/v1/executions", headers=preflight)
        assert "access-control-allow-origin" not in denied.headers


def test_security_headers(api):
    response = api.get("/")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
