"""The API process ends when it cannot serve: a taken port makes it exit, not hang on its Redis listener."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from helpers.stack import start_redis, stop


def test_the_api_exits_when_its_port_is_taken(tmp_path):
    redis_url, redis_process = start_redis(tmp_path)
    try:
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen()
            env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
            env.update(EXECUTIONER_REDIS_URL=redis_url, EXECUTIONER_PORT=str(held.getsockname()[1]))
            # uvicorn's default loop (uvloop here) is where a listener blocked in a read once never let go
            done = subprocess.run(
                [sys.executable, "-P", "-m", "executioner.cli", "api"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=30,
            )
        assert done.returncode != 0
        assert "address already in use" in done.stderr.lower()
    finally:
        stop(redis_process)
