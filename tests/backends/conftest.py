"""`run_code`: run a program through the whole system on each backend and return its document.

The behaviour suite is written once and runs against every backend; a backend
joins by adding its stack to `BACKENDS`.
"""

from __future__ import annotations

import httpx
import pytest

BACKENDS = ["local"]


@pytest.fixture(params=BACKENDS)
def backend_stack(request):
    if request.param == "local":
        return request.getfixturevalue("stack")
    return request.getfixturevalue(f"{request.param}_stack")


@pytest.fixture
def run_code(backend_stack):
    client = httpx.Client(base_url=backend_stack.url, timeout=120)

    def run(code: str, stdin: str = "", timeout: float = 10, memory_mb: int = 128) -> dict:
        response = client.post(
            "/v1/executions",
            params={"wait": 30},
            json={"code": code, "stdin": stdin, "limits": {"timeout_seconds": timeout, "memory_mb": memory_mb}},
        )
        assert response.status_code in (200, 202), response.text
        document = response.json()
        while document["status"] in ("queued", "running"):
            document = client.get(f"/v1/executions/{document['id']}", params={"wait": 30}).json()
        return document

    run.stack = backend_stack
    yield run
    client.close()
