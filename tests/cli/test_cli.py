"""The `executioner` command as a user runs it: `run` without a server, `submit` to an API, `up` for the whole stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from helpers.stack import free_port

EXECUTIONER = str(Path(sys.executable).with_name("executioner"))


def cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([EXECUTIONER, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_run_prints_output_and_mirrors_the_exit_status(tmp_path):
    program = tmp_path / "prog.py"
    program.write_text("import sys\nprint('out:', sys.stdin.read().strip())\nprint('err', file=sys.stderr)\nsys.exit(7)\n")
    stdin = tmp_path / "in.txt"
    stdin.write_text("data\n")
    result = cli("run", str(program), "--stdin", str(stdin))
    assert result.returncode == 7
    assert result.stdout == "out: data\n"
    assert result.stderr == "err\n"


def test_run_json_prints_the_execution_document(tmp_path):
    program = tmp_path / "prog.py"
    program.write_text("print(21 * 2)\n")
    result = cli("run", str(program), "--json", "--timeout", "3", "--memory", "64")
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert document["status"] == "succeeded" and document["stdout"] == "42\n" and document["exit_code"] == 0
    assert document["limits"] == {"timeout_seconds": 3.0, "memory_mb": 64}
    assert document["backend"] == "local"


def test_run_reports_limits_with_their_own_exit_statuses(tmp_path):
    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(10)\n")
    result = cli("run", str(slow), "--timeout", "1")
    assert result.returncode == 124
    assert "timed_out" in result.stderr
    hungry = tmp_path / "hungry.py"
    hungry.write_text("x = []\nwhile True:\n    x.append(bytearray(8 << 20))\n")
    result = cli("run", str(hungry), "--memory", "64")
    assert result.returncode == 137
    assert "memory_exceeded" in result.stderr


def test_submit_sends_a_file_to_the_api(stack, tmp_path):
    program = tmp_path / "prog.py"
    program.write_text("print(input()[::-1])\n")
    stdin = tmp_path / "in.txt"
    stdin.write_text("olleh\n")
    result = cli("submit", str(program), "--url", stack.url, "--stdin", str(stdin))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"
    document = json.loads(cli("submit", str(program), "--url", stack.url, "--stdin", str(stdin), "--json").stdout)
    assert document["status"] == "succeeded" and document["id"]


def test_submit_reports_api_errors(stack, tmp_path):
    program = tmp_path / "big.py"
    program.write_text("#" * (70 * 1024))
    result = cli("submit", str(program), "--url", stack.url)
    assert result.returncode == 2
    assert "413" in result.stderr


def test_up_serves_the_whole_stack_with_a_private_redis(tmp_path):
    """What `make up` runs: a private Redis, the worker, the API and the web UI; all gone after SIGTERM."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
    env["EXECUTIONER_PORT"] = str(port)
    log = tmp_path / "up.log"
    with open(log, "wb") as output:
        up = subprocess.Popen([EXECUTIONER, "up"], env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "serving http" not in log.read_text() and time.monotonic() < deadline:
            assert up.poll() is None, log.read_text()
            time.sleep(0.1)
        assert "started a private redis-server" in log.read_text()
        assert "the API is open" in log.read_text()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
            doc = api.post("/v1/executions", params={"wait": 30}, json={"code": "print('up and running')"}).json()
            assert doc["status"] == "succeeded" and doc["stdout"] == "up and running\n"
            page = api.get("/")
            assert page.status_code == 200 and "<div id=\"root\"" in page.text
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        up.wait(timeout=30)
    leftover = subprocess.run(["pgrep", "-s", str(up.pid)], capture_output=True, text=True).stdout
    assert leftover == ""
