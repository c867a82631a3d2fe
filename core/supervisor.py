"""Keep a few child processes running (what `executioner up` starts): restart a crashed one, stop them all cleanly.

- A child that exits is started again after a delay that doubles with each crash (0.5 s, 1 s, 2 s ... up to 30 s)
  and starts over once the child has stayed up for a minute; every restart is logged with the child's name, how it
  ended and the delay. The other children keep running meanwhile.
- A child that exits within 10 s of starting, 5 times in a row, cannot start (a damaged data file, a broken
  install): the supervisor says so, stops the others and returns 1 instead of retrying forever. So it does at once
  when another program already listens on a child's port (waiting for the child to listen would be fooled).
- SIGINT, SIGTERM and SIGHUP stop every child in the reverse order of their start (the API before the worker,
  the worker before Redis, so results still reach the store): SIGTERM, then SIGKILL after a timeout; a second
  signal kills at once. Children run in their own process groups, so a terminal's Ctrl-C reaches only the
  supervisor, and they get SIGTERM from the kernel should the supervisor itself die.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Policy:
    """When to restart, and when to give up."""

    first_delay: float = 0.5
    max_delay: float = 30.0
    # A child that stayed up this long starts its backoff over when it next crashes.
    stable_seconds: float = 60.0
    # An exit this soon after starting is a start-up failure; this many in a row and the supervisor gives up.
    startup_seconds: float = 10.0
    max_startup_failures: int = 5
    # How long a child may take to stop after SIGTERM before it is killed.
    stop_timeout: float = 10.0
    # How long a child with a port may take to listen when the stack first starts.
    ready_timeout: float = 60.0

    def delay(self, crashes: int) -> float:
        """Seconds to wait before the restart that follows `crashes` crashes in a row (1 for the first)."""
        return float(min(self.max_delay, self.first_delay * 2 ** max(0, crashes - 1)))


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: dict[str, str] | None = None
    # Where it listens: something else listening there first means it cannot start.
    port: int | None = None
    host: str = "127.0.0.1"
    # Whether it is ready to serve; by default, once it accepts connections on host:port (ready at once without one).
    ready: Callable[[], bool] | None = None
    # Said when the supervisor gives up on this child: where to look.
    advice: str = ""
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    crashes: int = 0
    startup_failures: int = 0
    restart_at: float | None = None
    restarts: int = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def is_ready(self) -> bool:
        if self.ready is not None:
            return self.ready()
        return self.port is None or listening(self.port, self.host)


class GiveUp(Exception):
    """A child cannot start: the message says which and why."""


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A pre-exec hook: the child gets SIGTERM when the supervisor dies (Linux), so nothing outlives it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def setup() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the supervisor died before the line above
            os._exit(1)

    return setup


class Supervisor:
    def __init__(self, policy: Policy | None = None, log: Callable[[str], None] | None = None):
        self.policy = policy or Policy()
        self.log = log or (lambda line: print(f"executioner: {line}", file=sys.stderr, flush=True))
        self.children: list[Child] = []
        self.signals: list[int] = []

    def add(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        ready: Callable[[], bool] | None = None,
        advice: str = "",
    ) -> Child:
        """Children start in the order they are added (each once ready) and stop in the reverse order."""
        child = Child(name=name, argv=list(argv), env=env, port=port, host=host, ready=ready, advice=advice)
        self.children.append(child)
        return child

    # Running ----------------------------------------------------------------
    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        """Start every child, keep them running until a signal (returns 0) or one cannot start (returns 1)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            for child in self.children:
                if not self._start_until_ready(child):
                    return 0
            if on_ready:
                on_ready()
            while not self.signals:
                self._tend()
                time.sleep(POLL_SECONDS)
            self.log(f"{signal.Signals(self.signals[0]).name} received; stopping")
            return 0
        except GiveUp as exc:
            self.log(str(exc))
            return 1
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signum)

    def _spawn(self, child: Child) -> None:
        child.restart_at = None
        child.process = subprocess.Popen(
            list(child.argv), env=child.env, process_group=0, preexec_fn=_die_with_parent(os.getpid())
        )
        child.started_at = time.monotonic()
        if child.restarts:
            self.log(f"{child.name} restarted (pid {child.pid})")

    def _start_until_ready(self, child: Child) -> bool:
        """First start of one child, retried like any crash; False if a signal came first."""
        while not self.signals:
            if child.port is not None and listening(child.port, child.host):
                # Readiness would be a lie, and the child could only fail.
                raise GiveUp(f"cannot start {child.name}: {child.host}:{child.port} is in use by another program")
            self._spawn(child)
            deadline = time.monotonic() + self.policy.ready_timeout
            assert child.process is not None
            while not child.is_ready():
                if self.signals:
                    return False
                if child.process.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    raise GiveUp(f"{child.name} is not ready {self.policy.ready_timeout:g} s after starting; giving up")
                time.sleep(0.05)
            else:
                return True
            self._crashed(child)
            while not self.signals and child.restart_at is not None and time.monotonic() < child.restart_at:
                self._tend(but=child)  # the children started already are supervised meanwhile
                time.sleep(POLL_SECONDS)
        return False

    def _tend(self, but: Child | None = None) -> None:
        """One look at every child: restart the ones whose delay has passed, notice the ones that exited."""
        for child in self.children:
            if child.process is None or child is but:
                continue  # not started yet, or being started
            if child.restart_at is not None:
                if time.monotonic() >= child.restart_at and not self.signals:
                    self._spawn(child)
            elif child.process.poll() is not None:
                self._crashed(child)

    def _crashed(self, child: Child) -> None:
        """Schedule the restart of a child that exited, or raise GiveUp if it cannot start."""
        assert child.process is not None and child.process.returncode is not None
        lived = time.monotonic() - child.started_at
        status = describe_exit(child.process.returncode)
        child.crashes = 1 if lived >= self.policy.stable_seconds else child.crashes + 1
        child.startup_failures = child.startup_failures + 1 if lived < self.policy.startup_seconds else 0
        if child.startup_failures >= self.policy.max_startup_failures:
            hint = ""
            if child.port is not None and listening(child.port, child.host):
                hint = f"; {child.host}:{child.port} is in use by another program"
            raise GiveUp(
                f"{child.name} exited within {self.policy.startup_seconds:g} s of starting "
                f"{child.startup_failures} times in a row (last: {status}{hint}); giving up"
                + (f". {child.advice}" if child.advice else "")
            )
        delay = self.policy.delay(child.crashes)
        child.restarts += 1
        child.restart_at = time.monotonic() + delay
        self.log(f"{child.name} (pid {child.pid}) {status} after {lived:.1f} s; restarting it in {delay:g} s")

    # Stopping ---------------------------------------------------------------
    def stop_all(self) -> None:
        """SIGTERM each child in the reverse order of start, SIGKILL after the timeout (at once on a second signal)."""
        signals_before = len(self.signals)
        for child in reversed(self.children):
            process = child.process
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            deadline = time.monotonic() + self.policy.stop_timeout
            while process.poll() is None and time.monotonic() < deadline and len(self.signals) <= signals_before:
                time.sleep(0.05)
            if process.poll() is None:
                self.log(f"{child.name} (pid {process.pid}) did not stop; killing it")
                process.kill()
                process.wait()
