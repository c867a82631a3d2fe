"""The Kubernetes warm pool, refill side: the operator is the one component that makes pool pods.

For each runtime in EXECUTIONER_KUBERNETES_POOL_SIZES it keeps that many waiting pool Jobs (workers claim them,
worker/backends/kubernetes_pool.py). After every change to the pool Jobs, seen by a watch, it lists them again:
a claimed Job leaves the waiting set and is replaced; a waiting Job whose pod died, one made from an older template
(an upgrade changed the image or limits) or one beyond the wanted size is deleted (and so replaced if it counted).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError

from executioner.kube import POOL_LABEL, POOL_STATE_LABEL, POOL_TEMPLATE_LABEL, POOL_WAITING
from executioner.settings import Settings
from executioner.worker.backends.kubernetes import with_retries
from executioner.worker.backends.kubernetes_pool import job_finished
from executioner.worker.backends.sandbox_pods import pool_job, pool_template

log = logging.getLogger(__name__)
# A watch round's length: with no change to the pool Jobs for this long, the pool is listed again anyway.
WATCH_SECONDS = 10
# After a failed pass (the API server away, the quota full), wait this long before the next.
RETRY_SECONDS = 2.0


class PoolRefiller:
    """Keeps `settings.kubernetes_pool_sizes[runtime]` waiting pool Jobs per runtime in the sandbox namespace."""

    def __init__(self, settings: Settings, batch: client.BatchV1Api):
        self.settings = settings
        self.namespace = settings.sandbox_namespace
        self.batch = batch
        self.templates = {runtime: pool_template(runtime, settings) for runtime in settings.kubernetes_pool_sizes}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refill(self) -> str:
        """One pass: delete the waiting Jobs that cannot serve, create the missing ones. Returns the listing's
        resourceVersion (to watch from)."""
        listing = self.batch.list_namespaced_job(self.namespace, label_selector=POOL_LABEL)
        waiting: dict[str, list[client.V1Job]] = defaultdict(list)
        for job in listing.items:
            labels = job.metadata.labels or {}
            runtime = labels.get(POOL_LABEL, "")
            if labels.get(POOL_STATE_LABEL) != POOL_WAITING or runtime not in self.templates:
                continue  # claimed: its worker deletes it (the sweep, if the worker died); or not a pool of ours
            if job_finished(job) or labels.get(POOL_TEMPLATE_LABEL) != self.templates[runtime]:
                self._delete(job)
            else:
                waiting[runtime].append(job)
        for runtime, size in self.settings.kubernetes_pool_sizes.items():
            jobs = sorted(waiting[runtime], key=lambda job: job.metadata.creation_timestamp)
            for job in jobs[size:]:
                self._delete(job)
            for _ in range(size - len(jobs)):
                with_retries(self.batch.create_namespaced_job, self.namespace, pool_job(runtime, self.settings))
        return str(listing.metadata.resource_version)

    def _delete(self, job: client.V1Job) -> None:
        """Delete a waiting Job, unless a worker claimed it since it was listed (the precondition fails then)."""
        options = client.V1DeleteOptions(
            propagation_policy="Background",
            grace_period_seconds=0,
            preconditions=client.V1Preconditions(resource_version=job.metadata.resource_version),
        )
        try:
            self.batch.delete_namespaced_job(job.metadata.name, self.namespace, body=options)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def wait_for_change(self, resource_version: str) -> None:
        """Return at the first change to any pool Job after `resource_version`, or after WATCH_SECONDS."""
        stream = watch.Watch()
        try:
            for _ in stream.stream(
                self.batch.list_namespaced_job,
                self.namespace,
                label_selector=POOL_LABEL,
                resource_version=resource_version,
                timeout_seconds=WATCH_SECONDS,
            ):
                return
        except ProtocolError:
            pass
        except ApiException as exc:
            if exc.status != 410:  # a stale version: list again
                raise
        finally:
            stream.stop()

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                version = self.refill()
                if not self._stop.is_set():
                    self.wait_for_change(version)
            except Exception:
                log.exception("cannot refill the warm pool; executions take the cold path meanwhile")
                self._stop.wait(RETRY_SECONDS)

    def start(self) -> None:
        """Refill in a thread of its own, if this deployment has a pool (size 0 for a runtime drains its Jobs)."""
        if not self.settings.kubernetes_pool_sizes:
            return
        self._thread = threading.Thread(target=self.run_forever, name="warm-pool-refill", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
