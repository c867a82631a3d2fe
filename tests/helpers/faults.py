"""Run `executioner up` as a user does, break its parts with kill -9, and account for every accepted execution.

- `Up`: one `executioner up` in its own session, its output in a log file; finds its children (redis, worker,
  api, operator) by reading `ps --ppid`, kills one, stops the whole thing.
- `Workload`: a mix of quick prints and programs that sleep 1-3 s, each printing its own marker, submitted by a few
  clients that retry until the API accepts (202) or a deadline passes; only 202s count as accepted.
- `Tally`: what became of the accepted executions: lost, duplicated, stuck, error with a reason, wrong result.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

EXECUTIONER = str(Path(sys.executable).with_name("executioner"))
TERMINAL = {"succeeded", "failed", "timed_out", "memory_exceeded", "cancelled", "error"}
# What each child of `up` runs, as `ps` shows it.
COMMANDS = {
    "redis": "redis-server",
    "worker": "executioner.cli worker",
    "api": "uvicorn executioner.api.main:create_app",
    "operator": "executioner.cli operator",
}
CLAIM = re.compile(r"running execution ([0-9a-f]{32})")
ENDED = re.compile(r"execution ([0-9a-f]{32}) ended")


def up_environment(state_dir: Path, port: int, **settings: str | int | float) -> dict[str, str]:
    """The caller's environment without any EXECUTIONER_* setting, plus the state dir, the API port and `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTIONER_")}
    env["EXECUTIONER_STATE_DIR"] = str(state_dir)
    env["EXECUTIONER_PORT"] = str(port)
    env.update({f"EXECUTIONER_{name.upper()}": str(value) for name, value in settings.items()})
    return env


class Up:
    """One `executioner up`, started in its own session so a test can signal it and find what it leaves behind."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env = env
        self.log = log
        self.url = f"http://127.0.0.1:{env['EXECUTIONER_PORT']}"
        with open(log, "ab") as output:
            self.process = subprocess.Popen(
                [EXECUTIONER, "up"], env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, seconds: float, start: int = 0) -> None:
        deadline = time.monotonic() + seconds
        while text not in self.output()[start:]:
            assert self.process.poll() is None, (
                f"`executioner up` exited with {self.process.returncode}:\n{self.tail()}"
            )
            assert time.monotonic() < deadline, (
                f"{text!r} not in `executioner up`'s output after {seconds} s:\n{self.tail()}"
            )
            time.sleep(0.1)

    def wait_until_serving(self, seconds: float = 90) -> Up:
        self.wait_for_output("executioner: serving http", seconds)
        return self

    def tail(self, chars: int = 6000) -> str:
        return self.output()[-chars:]

    def children(self) -> dict[str, int]:
        """Child name -> pid, from `ps -o pid,args --ppid`."""
        listing = subprocess.run(
            ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        found: dict[str, int] = {}
        for line in listing.splitlines():
            pid, _, args = line.strip().partition(" ")
            for name, command in COMMANDS.items():
                if command in args:
                    found[name] = int(pid)
        return found

    def kill(self, name: str) -> tuple[int, int]:
        """SIGKILL one child; returns its pid and the length of the output once it is gone (everything it wrote)."""
        pid = self.children()[name]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists():  # gone once `up` has reaped it
            assert time.monotonic() < deadline, f"{name} (pid {pid}) still exists 10 s after SIGKILL"
            time.sleep(0.02)
        return pid, len(self.output())

    def stop(self, sig: int = signal.SIGINT, seconds: float = 60) -> int:
        """Signal `up` alone (as Ctrl-C in its terminal would); it must stop every child and exit."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            status = self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            for pid in [self.process.pid, *self.children().values()]:
                os.kill(pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(
                f"`executioner up` did not stop within {seconds} s of {sig!r}:\n{self.tail()}"
            ) from None
        return status

    def leftovers(self) -> str:
        return subprocess.run(["pgrep", "-a", "-s", str(self.process.pid)], capture_output=True, text=True).stdout

    def claims(self, start: int = 0, end: int | None = None) -> list[str]:
        """Execution ids in the worker's "running execution <id>" lines: one per successful claim."""
        return CLAIM.findall(self.output()[start:end])

    def ended(self, start: int = 0, end: int | None = None) -> list[str]:
        return ENDED.findall(self.output()[start:end])


def request(method: str, url: str, seconds: float = 60, **kwargs: object) -> httpx.Response:
    """One HTTP call retried through connection errors and 5xx (the API or its store restarting), for `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            response = httpx.request(method, url, timeout=30, **kwargs)  # type: ignore[arg-type]  # httpx's keywords
            if response.status_code < 500:
                return response
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{method} {url}: no answer but errors for {seconds} s"
        time.sleep(0.2)


@dataclass
class Program:
    code: str
    stdout: str
    sleeps: float
    id: str | None = None  # set once the API accepted it (202)
    accepted_at: float = 0.0  # time.monotonic() then


def mixed_programs(count: int, tag: str) -> list[Program]:
    """Every other one prints at once; the others sleep 1, 2 or 3 s first. Each prints a marker of its own."""
    programs = []
    for i in range(count):
        marker = f"{tag}-{i}-{uuid.uuid4().hex[:12]}"
        sleeps = 0 if i % 2 == 0 else 1 + (i // 2) % 3
        code = f"print({marker!r})" if not sleeps else f"import time\ntime.sleep({sleeps})\nprint({marker!r})"
        programs.append(Program(code=code, stdout=marker + "\n", sleeps=sleeps))
    return programs


class Workload:
    """Submits programs from a few client threads; each retries until its program is accepted (202)."""

    def __init__(self, url: str, programs: list[Program], clients: int = 4, seconds: float = 90):
        self.url = url
        self.programs = programs
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds  # for the whole workload
        self.refused = 0  # attempts that failed at the HTTP level or with 5xx: never accepted
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(clients)
        self._futures = [self._pool.submit(self._submit, program) for program in programs]

    def _submit(self, program: Program) -> None:
        body = {"code": program.code, "limits": {"timeout_seconds": 15}}
        while program.id is None and not self._stop.is_set():
            try:
                response = httpx.post(f"{self.url}/v1/executions", json=body, timeout=10)
                if response.status_code == 202:
                    program.accepted_at = time.monotonic()
                    program.id = response.json()["id"]
                    return
                assert response.status_code >= 500, (
                    f"the API refused a valid program: {response.status_code} {response.text}"
                )
            except httpx.TransportError:
                pass
            with self._lock:
                self.refused += 1
            assert time.monotonic() < self.deadline, f"not every program accepted within {self.seconds} s"
            time.sleep(0.2)

    @property
    def accepted(self) -> list[Program]:
        return [program for program in self.programs if program.id is not None]

    def wait(self) -> None:
        """Until every program is accepted; raises what a client raised."""
        for future in self._futures:
            future.result(timeout=max(0.0, self.deadline - time.monotonic()) + 15)
        self._pool.shutdown()

    def close(self) -> None:
        """Stop submitting (a test that failed half-way must not leave clients retrying)."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


def documents(url: str, ids: list[str]) -> dict[str, dict | None]:
    """id -> the execution document (None when the API answers 404)."""
    found: dict[str, dict | None] = {}
    for execution_id in ids:
        response = request("GET", f"{url}/v1/executions/{execution_id}")
        assert response.status_code in (200, 404), response.text
        found[execution_id] = response.json() if response.status_code == 200 else None
    return found


def wait_until_final(url: str, ids: list[str], seconds: float) -> dict[str, dict | None]:
    """Polls until every execution is terminal (or missing) or the time is up; returns the last documents."""
    deadline = time.monotonic() + seconds
    latest = documents(url, ids)
    while time.monotonic() < deadline:
        pending = [i for i, doc in latest.items() if doc is not None and doc["status"] not in TERMINAL]
        if not pending:
            break
        time.sleep(0.5)
        latest.update(documents(url, pending))
    return latest


@dataclass
class Tally:
    """What became of the executions the API accepted during one fault."""

    fault: str
    accepted: int = 0
    refused_attempts: int = 0
    succeeded: int = 0
    lost: list[str] = field(default_factory=list)  # accepted, then unknown to the API
    duplicated: list[str] = field(default_factory=list)  # claimed (so run) more than once
    stuck: list[str] = field(default_factory=list)  # not final within the bound
    error_with_reason: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)  # anything else: a wrong output, an error without a reason...
    seconds_to_settle: float = 0.0

    def line(self) -> str:
        return (
            f"{self.fault:<8} accepted {self.accepted:>3}  succeeded {self.succeeded:>3}  "
            f"error-with-reason {len(self.error_with_reason):>2}  lost {len(self.lost)}  "
            f"duplicated {len(self.duplicated)}  stuck {len(self.stuck)}  wrong {len(self.wrong)}  "
            f"(refused attempts {self.refused_attempts}, all final {self.seconds_to_settle:.1f} s after the kill)"
        )


def tally(fault: str, programs: list[Program], final: dict[str, dict | None], claims: list[str]) -> Tally:
    result = Tally(fault=fault, accepted=len(programs))
    for program in programs:
        assert program.id is not None
        doc = final[program.id]
        if doc is None:
            result.lost.append(program.id)
            continue
        if claims.count(program.id) > 1:
            result.duplicated.append(program.id)
        if doc["status"] not in TERMINAL:
            result.stuck.append(program.id)
        elif doc["status"] == "succeeded" and doc["stdout"] == program.stdout:
            result.succeeded += 1
        elif doc["status"] == "error" and doc["error"]:
            result.error_with_reason.append(program.id)
        else:
            result.wrong.append(program.id)
    return result


# A supervisor of small stand-in children, in a process of its own (it installs signal handlers), for tests of the
# supervision itself: argv[1] is JSON {"policy": {...Policy fields}, "children": [{"name": ..., "argv": [...]}, ...]}.
SUPERVISE = """
import json, sys
from executioner.supervisor import Policy, Supervisor

config = json.loads(sys.argv[1])
supervisor = Supervisor(Policy(**config["policy"]))
for child in config["children"]:
    supervisor.add(child["name"], child["argv"], port=child.get("port"))
sys.exit(supervisor.run(on_ready=lambda: print("executioner: all started", file=sys.stderr, flush=True)))
"""


def supervise(children: dict[str, str], log: Path, **policy: float) -> subprocess.Popen[bytes]:
    """Start a supervisor of `children` (name -> Python source each runs), its output in `log`."""
    config = {
        "policy": policy,
        "children": [{"name": name, "argv": [sys.executable, "-c", source]} for name, source in children.items()],
    }
    with open(log, "ab") as output:
        return subprocess.Popen(
            [sys.executable, "-P", "-c", SUPERVISE, json.dumps(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def child_pids(parent: int) -> dict[str, int]:
    """The stand-in children of a supervisor by the name each prints in its argv (`-c` source), pid."""
    listing = subprocess.run(
        ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(parent)], capture_output=True, text=True
    ).stdout
    return {line.split("#")[-1].strip(): int(line.split()[0]) for line in listing.splitlines() if "#" in line}
