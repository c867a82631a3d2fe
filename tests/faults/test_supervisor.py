"""The supervision `executioner up` relies on (core/supervisor.py), with small real processes as its children and
short delays: restarts with exponential backoff that starts over, giving up on a child that cannot start, stopping
in order, and no child outliving the supervisor."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from helpers.faults import child_pids, supervise

SLEEPER = "import time; time.sleep(600)  # {name}"
RESTART = re.compile(r"executioner: (\w+) \(pid (\d+)\) (.+?) after [\d.]+ s; restarting it in ([\d.]+) s")


def wait_for(log: Path, text: str, process: subprocess.Popen, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while text not in log.read_text():
        assert process.poll() is None, f"the supervisor exited with {process.returncode}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"{text!r} not logged after {seconds} s:\n{log.read_text()}"
        time.sleep(0.02)


def finish(process: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def leftovers(process: subprocess.Popen) -> str:
    return subprocess.run(["pgrep", "-a", "-s", str(process.pid)], capture_output=True, text=True).stdout


def test_a_crashed_child_is_restarted_with_doubling_delays_while_the_others_keep_running(tmp_path):
    log = tmp_path / "supervisor.log"
    children = {name: SLEEPER.format(name=name) for name in ("steady", "flaky")}
    supervisor = supervise(
        children, log, first_delay=0.2, max_delay=0.8, stable_seconds=3, startup_seconds=0.05, max_startup_failures=100
    )
    try:
        wait_for(log, "executioner: all started", supervisor)
        steady = child_pids(supervisor.pid)["steady"]
        for kill in range(1, 6):
            if kill == 5:
                time.sleep(3.2)  # stayed up long enough: the backoff starts over
            os.kill(child_pids(supervisor.pid)["flaky"], signal.SIGKILL)
            deadline = time.monotonic() + 5
            while log.read_text().count("executioner: flaky restarted (pid") < kill:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.02)
        restarts = RESTART.findall(log.read_text())
        assert [(name, status, delay) for name, _, status, delay in restarts] == [
            ("flaky", "killed by SIGKILL", delay) for delay in ("0.2", "0.4", "0.8", "0.8", "0.2")
        ]
        assert child_pids(supervisor.pid)["steady"] == steady  # never touched
    finally:
        status = finish(supervisor)
    assert status == 0, log.read_text()
    assert leftovers(supervisor) == ""


def test_a_child_that_cannot_start_is_given_up_on_and_the_others_are_stopped(tmp_path):
    log = tmp_path / "supervisor.log"
    children = {"steady": SLEEPER.format(name="steady"), "broken": "import sys; sys.exit(3)  # broken"}
    supervisor = supervise(children, log, first_delay=0.05, max_delay=1, startup_seconds=5, max_startup_failures=4)
    try:
        status = supervisor.wait(timeout=20)
    finally:
        finish(supervisor, signal.SIGKILL)
    output = log.read_text()
    assert status == 1, output
    assert [delay for _, _, _, delay in RESTART.findall(output)] == ["0.05", "0.1", "0.2"]
    assert (
        "executioner: broken exited within 5 s of starting 4 times in a row (last: exit status 3); giving up" in output
    )
    assert leftovers(supervisor) == ""  # the steady one was stopped too


def test_ctrl_c_reaches_only_the_supervisor_which_stops_children_in_reverse_order(tmp_path):
    """A terminal sends SIGINT to its whole foreground process group: the children are in groups of their own, so
    only the supervisor hears it and stops them last-started first, killing one that ignores SIGTERM."""
    log = tmp_path / "supervisor.log"
    children = {
        "first": "import signal, sys, time\n"
        "def stop(*_):\n    print('first: SIGTERM', flush=True)\n    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\ntime.sleep(600)  # first",
        "stubborn": "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)  # stubborn",
    }
    supervisor = supervise(children, log, stop_timeout=1)
    try:
        wait_for(log, "executioner: all started", supervisor)
        pids = child_pids(supervisor.pid)
        groups = {name: os.getpgid(pid) for name, pid in pids.items()}
        assert supervisor.pid not in groups.values(), groups
        os.killpg(supervisor.pid, signal.SIGINT)  # what Ctrl-C in the supervisor's terminal does
        status = supervisor.wait(timeout=20)
    finally:
        finish(supervisor, signal.SIGKILL)
    output = log.read_text()
    assert status == 0, output
    order = [
        output.index("executioner: SIGINT received; stopping"),
        output.index(f"executioner: stubborn (pid {pids['stubborn']}) did not stop; killing it"),
        output.index("first: SIGTERM"),
    ]
    assert order == sorted(order), output
    assert leftovers(supervisor) == ""


def test_no_child_outlives_a_killed_supervisor(tmp_path):
    log = tmp_path / "supervisor.log"
    supervisor = supervise({name: SLEEPER.format(name=name) for name in ("one", "two")}, log)
    try:
        wait_for(log, "executioner: all started", supervisor)
        pids = child_pids(supervisor.pid)
        assert set(pids) == {"one", "two"}
        supervisor.kill()
        supervisor.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in pids.values()):
            assert time.monotonic() < deadline, subprocess.run(
                ["ps", "-fp", *map(str, pids.values())], capture_output=True, text=True
            ).stdout
            time.sleep(0.05)
    finally:
        finish(supervisor, signal.SIGKILL)
    assert leftovers(supervisor) == ""
