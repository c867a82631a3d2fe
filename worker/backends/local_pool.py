"""Warm local sandboxes: started ahead of the executions, each waiting for its one job on a pipe.

A warm sandbox is the cold one (local.py) minus its job: bubblewrap with its namespaces, mounts and seccomp filter,
inside its own cgroups, the runner's interpreter started and blocked reading stdin. An execution takes one (or none:
the cold path serves it), gets its own limits written into the cgroups, sends its job, and destroys the sandbox
afterwards; a thread starts a fresh one in its place. Nothing of a sandbox is ever used twice.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from executioner.worker.backends.cgroups import SandboxCgroup

log = logging.getLogger(__name__)
# After a failed start, wait this long before the next try (a missing protection would fail again at once).
RETRY_SECONDS = 1.0
# How often a waiting pool looks for sandboxes that died while they waited.
CHECK_SECONDS = 0.5


@dataclass
class WarmSandbox:
    process: subprocess.Popen
    cgroup: SandboxCgroup | None

    def alive(self) -> bool:
        return self.process.poll() is None

    def destroy(self) -> None:
        """Kill the sandbox (bubblewrap's death takes its PID namespace down) and remove its cgroups."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):  # stderr: closed by whoever reads it
            if stream:
                stream.close()
        if self.cgroup:
            # Killing bubblewrap while its sandbox is still being set up (a pool closing as it refills) can leave the
            # sandbox's first process waiting for it forever: kill whatever is in the cgroups too.
            self.cgroup.kill_all()
            self.cgroup.remove()


@dataclass
class PoolStats:
    hits: int = 0  # executions a warm sandbox served
    misses: int = 0  # executions that found the pool empty
    started: int = 0  # warm sandboxes started
    replaced_dead: int = 0  # warm sandboxes that died while waiting
    start_seconds: list[float] = field(default_factory=list)  # how long each refill took, latest last


class WarmPool:
    """Keeps `size` warm sandboxes ready; `start` makes one (raising when it cannot)."""

    def __init__(self, size: int, start: Callable[[], WarmSandbox]):
        self.size = size
        self._start = start
        self._ready: deque[WarmSandbox] = deque()
        self._changed = threading.Condition()
        self._closed = False
        self.stats = PoolStats()
        self._filler = threading.Thread(target=self._fill, name="warm-pool", daemon=True)
        self._filler.start()
        self._retired: queue.SimpleQueue[WarmSandbox | None] = queue.SimpleQueue()
        self._reaper = threading.Thread(target=self._reap, name="warm-pool-reaper", daemon=True)
        self._reaper.start()

    def take(self) -> WarmSandbox | None:
        """A live warm sandbox for one execution, or None (the pool is empty or closed)."""
        with self._changed:
            while self._ready:
                sandbox = self._ready.popleft()
                self._changed.notify_all()
                if sandbox.alive():
                    self.stats.hits += 1
                    return sandbox
                self.stats.replaced_dead += 1
                sandbox.destroy()
            self.stats.misses += 1
            return None

    def ready(self) -> int:
        with self._changed:
            return len(self._ready)

    def pids(self) -> list[int]:
        """The waiting sandboxes' bubblewrap processes, oldest first."""
        with self._changed:
            return [sandbox.process.pid for sandbox in self._ready]

    def retire(self, sandbox: WarmSandbox) -> None:
        """Destroy a used sandbox in the background (at once, once the pool is closed)."""
        if self._closed:
            sandbox.destroy()
        else:
            self._retired.put(sandbox)

    def close(self) -> None:
        """Destroy every waiting and retired sandbox and stop refilling (the worker's shutdown)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._filler.join(timeout=30)
        self._retired.put(None)
        self._reaper.join(timeout=30)
        while not self._retired.empty():
            if sandbox := self._retired.get():
                sandbox.destroy()
        with self._changed:
            while self._ready:
                self._ready.popleft().destroy()

    def _reap(self) -> None:
        while sandbox := self._retired.get():
            try:
                sandbox.destroy()
            except Exception:
                log.exception("cannot destroy a used warm sandbox")

    def _fill(self) -> None:
        while True:
            with self._changed:
                self._drop_dead()
                while not self._closed and len(self._ready) >= self.size:
                    self._changed.wait(CHECK_SECONDS)
                    self._drop_dead()
                if self._closed:
                    return
            began = time.monotonic()
            try:
                sandbox = self._start()
            except Exception:
                log.exception("cannot start a warm sandbox; executions take the cold path meanwhile")
                with self._changed:
                    self._changed.wait(RETRY_SECONDS)
                continue
            with self._changed:
                if self._closed:
                    sandbox.destroy()
                    return
                self._ready.append(sandbox)
                self.stats.started += 1
                self.stats.start_seconds = [*self.stats.start_seconds[-999:], time.monotonic() - began]

    def _drop_dead(self) -> None:
        """Under the lock: a sandbox that died while it waited is removed (and so replaced)."""
        for sandbox in [s for s in self._ready if not s.alive()]:
            self._ready.remove(sandbox)
            self.stats.replaced_dead += 1
            log.warning("a warm sandbox died while it waited (exit %s); replacing it", sandbox.process.returncode)
            sandbox.destroy()
