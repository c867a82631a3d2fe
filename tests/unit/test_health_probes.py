"""The API's two probes: liveness touches nothing, readiness needs the store."""

from __future__ import annotations

import socket

from fastapi.testclient import TestClient

from executioner.api.main import create_app
from executioner.settings import Settings


def test_liveness_holds_while_the_store_is_unreachable_and_readiness_does_not():
    with socket.socket() as s:  # a port nothing listens on: the store is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Settings(redis_url=f"redis://127.0.0.1:{port}/0"))
    # the kubelet addresses a pod by its IP: the probes answer any Host, even in open mode (no API keys)
    with TestClient(app, base_url="http://10.244.0.7:8000") as client:
        assert client.get("/livez").json() == {"status": "ok"}
        ready = client.get("/healthz")
        assert ready.status_code == 503 and ready.json()["store"] == "unreachable"
