"""Start the real parts of the system for tests: redis-server, a Celery worker, the API.

The worker (the part that runs attack code in sandboxes) starts inside a private
mount namespace, so even a sandbox escape could not change the machine's mounts.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from executioner.cli import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]


def stop(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_redis(directory: Path, *options: str) -> tuple[str, subprocess.Popen]:
    """A private redis-server on a free port; `options` are more of its command-line flags."""
    server = shutil.which("redis-server")
    if not server:
        raise RuntimeError("redis-server is not installed; run `make deps`")
    port = free_port()
    process = subprocess.Popen(
        [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--loglevel",
            "warning",
            *options,
        ],
    )
    wait_for_port(port, process)
    return f"redis://127.0.0.1:{port}/0", process


def private_mount_namespace() -> list[str]:
    return ["unshare", "--mount", "--propagation", "private", "--"]


def start_worker(env: dict[str, str], log_path: Path, name: str = "worker") -> subprocess.Popen:
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [
                *private_mount_namespace(),
                sys.executable,
                "-P",
                "-m",
                "celery",
                "-A",
                "executioner.worker.celery_app",
                "worker",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{name}-{os.getpid()}@%h",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for_log(log_path, "ready.", process)
    return process


# The warm pool's refiller as the operator runs it (operator/pool.py), in a process of its own.
REFILLER = (
    "import logging; logging.basicConfig(level=logging.INFO); "
    "from kubernetes import client; from executioner.kube import kubernetes_api_client; "
    "from executioner.operator.pool import PoolRefiller; from executioner.settings import Settings; "
    "PoolRefiller(Settings(), client.BatchV1Api(kubernetes_api_client())).run_forever()"
)


def start_pool_refiller(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-P", "-c", REFILLER],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for_log(path: Path, text: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}:\n{path.read_text()[-3000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"{text!r} never appeared in {path}")


def start_api(env: dict[str, str], log_path: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-P",
                "-m",
                "uvicorn",
                "executioner.api.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            env={**env, "EXECUTIONER_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    wait_for_port(port, process)
    url = f"http://127.0.0.1:{port}"
    httpx.get(f"{url}/healthz", timeout=5).raise_for_status()
    return url, process


def kill_process_tree(process: subprocess.Popen) -> None:
    """SIGKILL a process and everything in its session, as a crash or the OOM killer would."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def run_program(
    client: httpx.Client,
    code: str,
    stdin: str = "",
    timeout: float = 10,
    memory_mb: int = 128,
    runtime: str = "python",
    files: dict[str, bytes] | None = None,
) -> dict:
    """Submit through the API and return the finished execution document; `files` are input files by path."""
    body = {
        "code": code,
        "stdin": stdin,
        "limits": {"timeout_seconds": timeout, "memory_mb": memory_mb},
        "runtime": runtime,
        "files": [
            {"path": path, "content_base64": base64.b64encode(data).decode()} for path, data in (files or {}).items()
        ],
    }
    response = client.post("/v1/executions", params={"wait": 30}, json=body)
    assert response.status_code in (200, 202), response.text
    document = response.json()
    while document["status"] in ("queued", "running"):
        document = client.get(f"/v1/executions/{document['id']}", params={"wait": 30}).json()
    return document
