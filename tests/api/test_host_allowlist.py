"""Open mode (no API keys) answers only to its own Host names, so a browser page cannot reach it by DNS rebinding."""

from __future__ import annotations

import pytest

from executioner.api.middleware import allowed_host_names, host_name
from helpers.private import private_api


@pytest.fixture(scope="module")
def open_api(tmp_path_factory):
    with private_api(tmp_path_factory.mktemp("open"), allowed_hosts="executioner.internal, Lab-Box.") as client:
        yield client


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:1", "localhost", "LOCALHOST:8000", "[::1]:8000", "[::1]", "executioner.internal:80",
     "lab-box",
     # an address (a Service's cluster IP, a node's): DNS rebinding needs a name, so an address is never a rebound one
     "10.96.14.2:8000", "[fd00::12]:8000"],
)  # fmt: skip
def test_the_apis_own_names_are_answered(open_api, host):
    response = open_api.get("/v1/executions", headers={"Host": host})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "host", ["rebind.attacker.example:8000", "rebind.attacker.example", "127.0.0.1.nip.io", "localhost.example", ""]
)
def test_a_rebound_name_is_refused(open_api, host):
    for method, path in (("GET", "/v1/executions"), ("POST", "/v1/executions"), ("GET", "/"), ("GET", "/docs")):
        response = open_api.request(method, path, headers={"Host": host}, json={"code": "print(1)"})
        assert response.status_code == 400, (method, path, response.text)
        detail = response.json()["detail"]
        assert f"Host {host!r} is not a name of this API" in detail
        assert "EXECUTIONER_ALLOWED_HOSTS" in detail
        assert response.headers["x-frame-options"] == "DENY"  # still under the security headers
    # nothing was submitted on its behalf
    assert open_api.get("/v1/executions").json()["items"] == []


def test_health_answers_any_host(open_api):
    # the kubelet probes a pod by its IP address
    assert open_api.get("/healthz", headers={"Host": "10.244.0.7:8000"}).status_code == 200


def test_with_api_keys_the_key_is_what_counts(tmp_path):
    with private_api(tmp_path, api_keys="the-key") as client:
        response = client.get("/v1/executions", headers={"Host": "api.example.com", "Authorization": "Bearer the-key"})
        assert response.status_code == 200, response.text


def test_host_names_are_parsed_like_browsers_send_them():
    assert host_name("[::1]:8000") == "::1"
    assert host_name("Example.COM.:80") == "example.com"
    assert host_name("127.0.0.1") == "127.0.0.1"
    assert allowed_host_names("0.0.0.0", []) == {"127.0.0.1", "localhost", "::1"}
    assert allowed_host_names("192.0.2.10", ["api.example"]) == {
        "127.0.0.1",
        "localhost",
        "::1",
        "192.0.2.10",
        "api.example",
    }
