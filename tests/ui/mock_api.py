"""Development stand-in for the real stack, for working on the web UI alone.

NOT a sandbox: it runs submitted code with a plain subprocess, so it binds to 127.0.0.1 only and is never
used by the real test (tests/ui/test_browser.py uses the `stack_url` fixture from tests/conftest.py).

    .venv/bin/python tests/ui/mock_api.py --port 8000      # serves frontend/dist + the /v1 contract
    PYTHONPATH=tests/ui .venv/bin/pytest -p mock_api tests/ui -m browser   # e2e test against the mock,
                                                           # only while tests/conftest.py has no stack_url
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, HTTPException, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

DIST = Path(__file__).resolve().parents[2] / "frontend" / "dist"
OUTPUT_CAP = 64 * 1024
TERMINAL = {"succeeded", "failed", "timed_out", "memory_exceeded", "cancelled", "error"}


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout_seconds: float = Field(5, gt=0, le=30)
    memory_mb: int = Field(128, ge=16, le=1024)


class ExecutionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=100_000)
    stdin: str = ""
    limits: Limits = Limits()


def now() -> str:
    return datetime.now(UTC).isoformat()


class Store:
    def __init__(self) -> None:
        self.docs: dict[str, dict] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()

    def finish(self, exec_id: str, **fields) -> bool:
        with self.lock:
            doc = self.docs[exec_id]
            if doc["status"] in TERMINAL:
                return False
            doc.update(fields, finished_at=now())
            started = doc["started_at"] and datetime.fromisoformat(doc["started_at"])
            doc["duration_ms"] = int((datetime.now(UTC) - started).total_seconds() * 1000) if started else None
            return True


store = Store()


def execute(exec_id: str, body: ExecutionCreate) -> None:
    time.sleep(0.2)  # sit in "queued" briefly, like a real broker hop
    with store.lock:
        doc = store.docs[exec_id]
        if doc["status"] in TERMINAL:
            return
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", body.code],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        store.procs[exec_id] = proc
        doc.update(status="running", started_at=now())
    try:
        out, err = proc.communicate(body.stdin, timeout=body.limits.timeout_seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        store.finish(exec_id, status="timed_out", stdout=out[:OUTPUT_CAP], stderr=err[:OUTPUT_CAP],
                     error=f"wall-clock limit of {body.limits.timeout_seconds}s exceeded")
        return
    store.finish(
        exec_id,
        status="succeeded" if proc.returncode == 0 else "failed",
        exit_code=proc.returncode,
        stdout=out[:OUTPUT_CAP], stderr=err[:OUTPUT_CAP],
        stdout_truncated=len(out) > OUTPUT_CAP, stderr_truncated=len(err) > OUTPUT_CAP,
    )


def build_app() -> FastAPI:
    app = FastAPI(title="THE_EXECUTIONER (UI mock)")

    @app.post("/v1/executions", status_code=202)
    def create(body: ExecutionCreate, response: Response) -> dict:
        exec_id = uuid.uuid4().hex
        doc = {
            "id": exec_id, "status": "queued", "created_at": now(), "started_at": None, "finished_at": None,
            "duration_ms": None, "exit_code": None, "stdout": "", "stderr": "",
            "stdout_truncated": False, "stderr_truncated": False, "error": None,
            "limits": body.limits.model_dump(), "backend": "local",
        }
        store.docs[exec_id] = doc
        threading.Thread(target=execute, args=(exec_id, body), daemon=True).start()
        response.headers["Location"] = f"/v1/executions/{exec_id}"
        return dict(doc)

    @app.get("/v1/executions")
    def list_(limit: int = 20) -> dict:
        docs = sorted(store.docs.values(), key=lambda d: d["created_at"], reverse=True)
        return {"items": [dict(d) for d in docs[:limit]], "next_cursor": None}

    @app.get("/v1/executions/{exec_id}")
    def get(exec_id: str) -> dict:
        if exec_id not in store.docs:
            raise HTTPException(404, "execution not found")
        return dict(store.docs[exec_id])

    @app.delete("/v1/executions/{exec_id}")
    def cancel(exec_id: str) -> dict:
        if exec_id not in store.docs:
            raise HTTPException(404, "execution not found")
        if not store.finish(exec_id, status="cancelled", error="cancelled by request"):
            raise HTTPException(409, "execution already finished")
        proc = store.procs.get(exec_id)
        if proc:
            proc.kill()
        return dict(store.docs[exec_id])

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    if DIST.is_dir():
        app.mount("/", StaticFiles(directory=DIST, html=True), name="ui")
    return app


# pytest plugin mode (`-p mock_api`): a stack_url that points at this mock.
try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def stack_url():
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(build_app(), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
        thread.join(5)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvicorn.run(build_app(), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
