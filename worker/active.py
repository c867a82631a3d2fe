"""The executions one worker process is running: their leases stay alive, and a cancellation stops their sandbox."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from executioner.models import Status
from executioner.store import ExecutionStore
from executioner.worker.backends.base import SandboxBackend

log = logging.getLogger(__name__)


class ActiveExecutions:
    """Two threads per worker process, however many executions run.

    The renewer extends every held lease each third of its lifetime; the listener
    hears every execution's status events and stops the sandbox of one of ours
    that someone else ended (a cancellation). A lease that can no longer be
    renewed means the execution was ended elsewhere, so its sandbox stops too.
    """

    def __init__(self, store: ExecutionStore, backend: SandboxBackend, lease_seconds: float):
        self.store = store
        self.backend = backend
        self.lease_seconds = lease_seconds
        self._leases: dict[str, str] = {}
        self._lock = threading.Lock()
        self._started = False

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._renew_forever, name="lease-renewer", daemon=True).start()
        threading.Thread(target=self._listen_forever, name="cancel-listener", daemon=True).start()

    @contextmanager
    def holding(self, execution_id: str, lease_owner: str) -> Iterator[None]:
        self.start()
        with self._lock:
            self._leases[execution_id] = lease_owner
        try:
            # A cancellation that landed before we registered would otherwise go unheard.
            current = self.store.get(execution_id)
            if current is None or current.status.terminal:
                self.backend.cancel(execution_id)
            yield
        finally:
            with self._lock:
                self._leases.pop(execution_id, None)

    def held_ids(self) -> frozenset[str]:
        """The executions this process is running now."""
        with self._lock:
            return frozenset(self._leases)

    def _held(self) -> dict[str, str]:
        with self._lock:
            return dict(self._leases)

    def _stop_if_held(self, execution_id: str) -> None:
        if execution_id in self._held():
            log.info("execution %s was ended elsewhere; stopping its sandbox", execution_id)
            self.backend.cancel(execution_id)

    def _renew_forever(self) -> None:
        stop = threading.Event()
        while not stop.wait(self.lease_seconds / 3):
            for execution_id, owner in self._held().items():
                try:
                    if not self.store.renew_lease(execution_id, owner, self.lease_seconds):
                        self._stop_if_held(execution_id)
                except Exception:
                    log.exception("could not renew the lease of %s", execution_id)

    def _listen_forever(self) -> None:
        prefix = self.store.events_channel("")
        backoff = threading.Event()
        while True:
            try:
                pubsub = self.store.redis.pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe(prefix + "*")
                for message in pubsub.listen():
                    if message["type"] == "pmessage" and Status(message["data"]).terminal:
                        self._stop_if_held(message["channel"].removeprefix(prefix))
            except Exception:
                log.exception("cancellation listener lost Redis; reconnecting")
                backoff.wait(1)
