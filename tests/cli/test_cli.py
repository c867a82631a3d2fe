"""The `executioner` command as a user runs it: `run` without a server, `submit` to an API, `up` for the whole stack."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from helpers.stack import free_port

EXECUTIONER = str(Path(sys.executable).with_name("executioner"))


def cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([EXECUTIONER, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_run_prints_output_and_mirrors_the_exit_status(tmp_path):
    program = tmp_path / "prog.py"
    program.write_text(
        "import sys\nprint('out:', sys.stdin.read().strip())\nprint('err', file=sys.stderr)\nsys.exit(7)\n"
    )
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


def test_submit_follows_a_server_with_a_short_wait_and_reads_the_key_from_the_environment(tmp_path):
    from helpers.private import private_api

    program = tmp_path / "slow.py"
    program.write_text("import time\ntime.sleep(3)\nprint('waited')\n")
    with private_api(tmp_path / "api", worker=True, max_wait_seconds=1, api_keys="cli-key") as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
        result = cli("submit", str(program), "--url", str(api.base_url), env={**env, "EXECUTIONER_API_KEY": "cli-key"})
        assert result.returncode == 0, result.stderr
        assert result.stdout == "waited\n"
        refused = cli("submit", str(program), "--url", str(api.base_url), env={**env, "EXECUTIONER_API_KEY": "wrong"})
        assert refused.returncode == 2 and "401" in refused.stderr


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                raw = bytes.fromhex(address)
                packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))  # host-order words
                found.add(socket.inet_ntop(socket.AF_INET if len(packed) == 4 else socket.AF_INET6, packed))
    return found


def test_up_serves_the_whole_stack_with_a_private_redis_that_keeps_its_data(tmp_path):
    """What `make up` runs: a private Redis keeping its data in the state dir (append-only, fsync always, no RDB,
    capped memory, 127.0.0.1 only, password and port kept 0600), the worker, the API and the web UI; one `up` per
    state dir; everything gone after SIGTERM."""
    port = free_port()
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
    env.update(EXECUTIONER_PORT=str(port), EXECUTIONER_STATE_DIR=str(state), EXECUTIONER_LOCAL_REDIS_MAXMEMORY_MB="64")
    log = tmp_path / "up.log"
    with open(log, "wb") as output:
        up = subprocess.Popen(
            [EXECUTIONER, "up"], env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while "serving http" not in log.read_text() and time.monotonic() < deadline:
            assert up.poll() is None, log.read_text()
            time.sleep(0.1)
        redis_port = int((state / "redis.port").read_text())
        assert f"started a private redis-server on 127.0.0.1:{redis_port}; its data lives in {state}" in log.read_text()
        assert "the API is open" in log.read_text()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
            doc = api.post("/v1/executions", params={"wait": 30}, json={"code": "print('up and running')"}).json()
            assert doc["status"] == "succeeded" and doc["stdout"] == "up and running\n"
            page = api.get("/")
            assert page.status_code == 200 and '<div id="root"' in page.text

        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        for name in ("redis.password", "redis.port", "redis.conf"):
            assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
        assert listening_addresses(redis_port) == {"127.0.0.1"}
        password = (state / "redis.password").read_text().strip()
        assert password not in subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
        with redis.Redis(port=redis_port, password=password, decode_responses=True) as client:
            config = {
                key: client.config_get(key)[key]
                for key in ("appendonly", "appendfsync", "save", "maxmemory", "maxmemory-policy")
            }
            assert config == {
                "appendonly": "yes",
                "appendfsync": "always",
                "save": "",
                "maxmemory": str(64 << 20),
                "maxmemory-policy": "noeviction",
            }
            assert client.config_get("dir")["dir"] == str(state / "redis")
        assert list((state / "redis" / "appendonlydir").iterdir())

        second = cli("up", env={**env, "EXECUTIONER_PORT": str(free_port())}, timeout=60)
        assert second.returncode == 1
        assert f"another `executioner up` (pid {up.pid}) uses {state}" in second.stderr
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        up.wait(timeout=60)
    assert up.returncode == 0, log.read_text()[-3000:]
    leftover = subprocess.run(["pgrep", "-a", "-s", str(up.pid)], capture_output=True, text=True).stdout
    assert leftover == ""


def test_up_refuses_to_start_when_the_api_port_is_taken(tmp_path):
    """Another program listens on EXECUTIONER_PORT: `up` says so and exits 1 instead of announcing a stack it
    does not serve, and leaves nothing running."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
        env.update(EXECUTIONER_PORT=str(port), EXECUTIONER_STATE_DIR=str(tmp_path / "state"))
        log = tmp_path / "up.log"
        with open(log, "wb") as output:
            up = subprocess.Popen(
                [EXECUTIONER, "up"], env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            status = up.wait(timeout=60)
        finally:
            if up.poll() is None:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
    output = log.read_text()
    assert status == 1, output[-3000:]
    assert f"executioner: cannot start api: 127.0.0.1:{port} is in use by another program" in output
    assert "serving http" not in output
    leftover = subprocess.run(["pgrep", "-a", "-s", str(up.pid)], capture_output=True, text=True).stdout
    assert leftover == ""
