"""The Kubernetes warm pool, worker side: claim a started sandbox pod, send it the job over pods/attach.

The operator keeps, per runtime, a few pool Jobs (build_pool_job) whose runner has started and waits on stdin. A
worker claims one with a merge patch of the Job's labels carrying the Job's resourceVersion as a precondition: of
two workers patching the same Job one gets 409 Conflict, so no pod is ever claimed twice. It then attaches to the
pod, writes the job (an 8-byte length, then JSON: no end-of-file is needed) and reads the runner's chunk lines and
envelope back over the same stream; if the stream breaks, the pod's log holds the same lines. The Job is deleted
once the result is recorded, and the pod with it: each pod runs one execution.

Only an execution with its runtime's default memory takes a pool pod (a pod's memory limit is fixed when it is
made); the others, and every execution that finds the pool empty, take the cold Job path.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import websocket
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from executioner.kube import EXECUTION_LABEL, POOL_CLAIMED, POOL_STATE_LABEL, waiting_pool_selector
from executioner.models import Execution
from executioner.runner_protocol import OutputSink, RunnerLines, warm_job
from executioner.settings import Settings
from executioner.worker.backends.sandbox_pods import CONTAINER, claimable_selector

log = logging.getLogger(__name__)
# How long a worker waits for the attach connection to a claimed pod before giving the pod up.
ATTACH_TIMEOUT_SECONDS = 10
# The client's WebSocket has no timeout of its own: without one, an API server that never answers an attach would
# hold the attach lock (and every warm execution behind it) forever. Only these attaches use websocket-client here.
websocket.setdefaulttimeout(ATTACH_TIMEOUT_SECONDS)
# Claimed pods whose attach failed before the job was sent (so no code ran): another is tried, then the cold path.
CLAIM_ATTEMPTS = 2
# With no output for this long, the worker checks that the claimed pod still runs.
QUIET_CHECK_SECONDS = 2.0
# How often a worker that finds no pool pod of its template looks for pool pods of another (a misconfiguration).
TEMPLATE_CHECK_SECONDS = 60.0


def job_finished(job: client.V1Job) -> bool:
    status = job.status
    return bool(status and (status.failed or status.succeeded or status.completion_time))


@dataclass
class ClaimedPod:
    job: str  # the pool Job's name
    pod: str


class AttachFailed(Exception):
    """No job reached the claimed pod: nothing ran, so another pod (or the cold path) may serve the execution."""


class WarmPodClaims:
    """A worker's side of the pool: claims, attaches, and remembers which pool Job serves which execution."""

    def __init__(self, settings: Settings, batch: client.BatchV1Api, core: client.CoreV1Api):
        self.settings = settings
        self.namespace = settings.sandbox_namespace
        self.batch = batch
        self.core = core
        # stream() swaps the client's transport while it connects: attaches get a client of their own, one at a time.
        self._attach_core = client.CoreV1Api(client.ApiClient(core.api_client.configuration))
        self._attach_lock = threading.Lock()
        self._selectors = {runtime: claimable_selector(runtime, settings) for runtime in settings.kubernetes_pool_sizes}
        self._next_template_check = 0.0

    def eligible(self, execution: Execution) -> bool:
        return bool(self.settings.kubernetes_pool_sizes.get(execution.runtime)) and (
            execution.limits.memory_mb == self.settings.runtime_memory_mb(execution.runtime)
        )

    def claim(self, execution: Execution) -> ClaimedPod | None:
        """Claim a Ready pool pod for the execution, or None (no pool, another memory limit, or none Ready)."""
        if not self.eligible(execution):
            return None
        jobs = self.batch.list_namespaced_job(self.namespace, label_selector=self._selectors[execution.runtime]).items
        if not jobs:
            self._warn_of_other_templates(execution.runtime)
        ready = [job for job in jobs if (job.status and job.status.ready) and not job_finished(job)]
        random.shuffle(ready)  # workers claiming at once mostly pick different Jobs
        for job in ready:
            if self._claim_job(job, execution):
                pod = self._running_pod(job.metadata.name)
                if pod is not None:
                    return ClaimedPod(job.metadata.name, pod)
                self.release(job.metadata.name)  # its pod went between the listing and the claim
        return None

    def _warn_of_other_templates(self, runtime: str) -> None:
        """A pool this worker never claims from (its pods made from another template: the operator's settings for
        sandbox pods differ from the worker's) would send every execution cold in silence: say so, once a minute."""
        if time.monotonic() < self._next_template_check:
            return
        self._next_template_check = time.monotonic() + TEMPLATE_CHECK_SECONDS
        waiting = self.batch.list_namespaced_job(self.namespace, label_selector=waiting_pool_selector(runtime)).items
        if waiting:
            log.warning(
                "the %s pool in %s has %d waiting pods made from another pod template than this worker's: check that "
                "the worker and the operator have the same sandbox settings (images, CPU, memory, runtime class...); "
                "executions take the cold path meanwhile",
                runtime,
                self.namespace,
                len(waiting),
            )

    def _claim_job(self, job: client.V1Job, execution: Execution) -> bool:
        # The Job controller counts activeDeadlineSeconds from the Job's start: a backstop the worker's own deadline
        # precedes, now that a program is about to run in it.
        started = job.status.start_time or datetime.now(UTC)
        waited = max(0.0, (datetime.now(UTC) - started).total_seconds())
        patch = {
            "metadata": {
                "resourceVersion": job.metadata.resource_version,  # the precondition: 409 if anyone changed it
                "labels": {POOL_STATE_LABEL: POOL_CLAIMED, EXECUTION_LABEL: execution.id},
            },
            "spec": {"activeDeadlineSeconds": math.ceil(waited + self.settings.worker_deadline(execution.limits))},
        }
        try:
            self.batch.patch_namespaced_job(job.metadata.name, self.namespace, patch)
        except ApiException as exc:
            if exc.status in (404, 409):  # another worker claimed it first, or it went
                return False
            raise
        return True

    def _running_pod(self, job_name: str) -> str | None:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"job-name={job_name}").items
        for pod in pods:
            states = [c.state for c in pod.status.container_statuses or [] if c.name == CONTAINER]
            if pod.status.phase == "Running" and states and states[0].running:
                return str(pod.metadata.name)
        return None

    def release(self, job_name: str) -> None:
        """Delete a pool Job (and its pod): after its execution, or a claim that could not be used."""
        try:
            self.batch.delete_namespaced_job(
                job_name, self.namespace, propagation_policy="Background", grace_period_seconds=0
            )
        except ApiException as exc:
            if exc.status != 404:
                log.warning("could not delete pool job %s: %s", job_name, exc.reason)

    def run(self, claimed: ClaimedPod, execution: Execution, output: OutputSink | None, deadline: float) -> str | None:
        """Send the job to the claimed pod and read the runner's lines until its envelope or `deadline`
        (time.monotonic()). Returns what the runner wrote (chunk lines go to `output` as they come), or None when
        the stream ended without the envelope. Raises AttachFailed when the job could not be sent."""
        job = warm_job(execution, self.settings, memory_rlimit=False, max_processes=0)
        try:
            with self._attach_lock:
                connection = stream(
                    self._attach_core.connect_get_namespaced_pod_attach,
                    claimed.pod,
                    self.namespace,
                    container=CONTAINER,
                    stdin=True,
                    stdout=True,
                    stderr=False,
                    tty=False,
                    binary=True,
                    _preload_content=False,
                    _request_timeout=ATTACH_TIMEOUT_SECONDS,
                )
            connection.write_stdin(job)
        except Exception as exc:
            raise AttachFailed(f"cannot attach to pool pod {claimed.pod}: {exc}") from exc
        lines = RunnerLines(output)
        quiet_since = time.monotonic()
        try:
            while not lines.ended and connection.is_open() and (remaining := deadline - time.monotonic()) > 0:
                connection.update(timeout=min(1.0, remaining))
                if data := connection.read_channel(1):  # the runner's stdout
                    lines.feed(data)
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > QUIET_CHECK_SECONDS:
                    # A pod deleted under a quiet program need not end the stream: look at it now and then.
                    if not self._still_running(claimed.pod):
                        break
                    quiet_since = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - a broken stream: the pod's log has the same lines
            log.info("the attach stream of %s broke: %s", claimed.pod, exc)
        finally:
            connection.close()
        return lines.text() if lines.ended else None

    def _still_running(self, pod_name: str) -> bool:
        try:
            pod = self.core.read_namespaced_pod(pod_name, self.namespace)
        except ApiException as exc:
            return exc.status != 404
        return pod.metadata.deletion_timestamp is None and pod.status.phase == "Running"
