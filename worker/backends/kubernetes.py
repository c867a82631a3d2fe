"""The Kubernetes backend: one ephemeral Job per execution, in the sandbox namespace.

The Job's pod runs its runtime's sandbox image's runner as PID 1, as a fixed
non-root UID, with a read-only root, no capabilities, RuntimeDefault seccomp, no
service-account token and a memory-backed /tmp. The code, stdin and each input
file travel in Secrets owned by the Job (each Secret holds at most 1 MiB), so
deleting the Job deletes them. The worker refuses to run code unless a deny-all
NetworkPolicy selects the sandbox pods (fail closed), waits for the pod by
watch, reads the runner's envelope from the pod log, and deletes the Job once
the result is recorded.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError

from executioner.files import decoded
from executioner.kube import (
    EXECUTION_LABEL,
    POOL_LABEL,
    SANDBOX_LABELS,
    execution_selector,
    job_name,
    kubernetes_api_client,
    sandbox_labels,
)
from executioner.models import Execution, Outcome, Status, memory_exceeded_reason
from executioner.runner_protocol import (
    CODE_PATH,
    FILES_MANIFEST_PATH,
    INPUT_DIR,
    STDIN_PATH,
    EnvelopeError,
    OutputSink,
    RunnerLines,
    files_manifest,
    input_file_source,
    parse_envelope,
    runner_args,
)
from executioner.settings import Settings
from executioner.worker.backends.base import LOST_WORKER_REASON, SandboxUnavailable
from executioner.worker.backends.kubernetes_pool import CLAIM_ATTEMPTS, AttachFailed, ClaimedPod, WarmPodClaims
from executioner.worker.backends.sandbox_pods import CONTAINER, sandbox_pod_spec

log = logging.getLogger(__name__)

IMAGE_PULL_FAILURES = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
START_FAILURES = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
WATCH_SECONDS = 30  # each watch call's server-side timeout; the loop re-watches until the deadline
DEADLINE_EXCEEDED_REASON = "the sandbox ran past its deadline and was stopped"
# What pod_events yields when a watch round ended without news, so the caller can look around.
ROUND_ENDED = "ROUND_ENDED"
T = TypeVar("T")


def in_input_dir(path: str) -> str:
    """A path under INPUT_DIR as the input volume's item path (relative to where it is mounted)."""
    relative = path.removeprefix(f"{INPUT_DIR}/")
    assert relative != path, f"{path} is not under {INPUT_DIR}"
    return relative


def input_sources(execution: Execution) -> list[dict[str, Any]]:
    """The input volume's sources: code (with the files' manifest when there are files), stdin, one per file."""
    name = job_name(execution.id)
    code_items = [{"key": "code", "path": in_input_dir(CODE_PATH)}]
    if execution.files:
        code_items.append({"key": "files.json", "path": in_input_dir(FILES_MANIFEST_PATH)})
    return [
        {"secret": {"name": f"{name}-code", "items": code_items}},
        {"secret": {"name": f"{name}-stdin", "items": [{"key": "stdin", "path": in_input_dir(STDIN_PATH)}]}},
        *(
            {
                "secret": {
                    "name": f"{name}-file-{i}",
                    "items": [{"key": "content", "path": in_input_dir(input_file_source(i))}],
                }
            }
            for i in range(len(execution.files))
        ),
    ]


def build_sandbox_job(execution: Execution, settings: Settings) -> dict[str, Any]:
    """The Job for one execution (a plain manifest: built here, sent elsewhere)."""
    labels = sandbox_labels(execution.id)
    pod_spec = sandbox_pod_spec(
        settings,
        image=settings.runtime_image(execution.runtime),
        memory_mb=execution.limits.memory_mb,
        # The kubelet's pod pids limit bounds processes here: RLIMIT_NPROC would count
        # every pod of this UID on the node together.
        args=runner_args(execution, settings, memory_rlimit=False, max_processes=0),
        volumes=[{"name": "input", "projected": {"defaultMode": 0o444, "sources": input_sources(execution)}}],
        mounts=[{"name": "input", "mountPath": INPUT_DIR, "readOnly": True}],
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(execution.id), "labels": labels},
        "spec": {
            # Created suspended: no pod exists until the input Secrets, owned by the Job, are in place.
            "suspend": True,
            "backoffLimit": 0,
            # A backstop counted from the resume: it leaves the program its whole time limit after a start-up as
            # long as the worker allows (schedule_timeout_seconds); the worker deletes the Job at its own deadline.
            "activeDeadlineSeconds": math.ceil(settings.worker_deadline(execution.limits)),
            "ttlSecondsAfterFinished": settings.job_ttl_seconds,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def build_input_secrets(execution: Execution, job: dict[str, Any]) -> list[dict[str, Any]]:
    """Code (and the files' manifest), stdin, and each input file's raw bytes in a Secret of its own (a Secret holds
    at most 1 MiB), all owned by the Job so they go when it goes."""
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": job["metadata"]["name"],
        "uid": job["metadata"]["uid"],
        "controller": False,
    }

    def secret(suffix: str, data: dict[str, bytes]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "immutable": True,
            "metadata": {
                "name": f"{job['metadata']['name']}-{suffix}",
                "labels": sandbox_labels(execution.id),
                "ownerReferences": [owner],
            },
            "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
        }

    code = {"code": execution.code.encode()}
    if execution.files:
        code["files.json"] = files_manifest(execution)
    return [
        secret("code", code),
        secret("stdin", {"stdin": execution.stdin.encode()}),
        *(secret(f"file-{i}", {"content": decoded(file)}) for i, file in enumerate(execution.files)),
    ]


def is_deny_all(policy: client.V1NetworkPolicy, pod_labels: dict[str, str]) -> bool:
    """True when the policy selects these pods and allows them no traffic in either direction."""
    spec = policy.spec
    if not spec or not {"Ingress", "Egress"} <= set(spec.policy_types or []):
        return False
    if spec.ingress or spec.egress:
        return False
    selector = spec.pod_selector
    if selector.match_expressions:
        return False  # not evaluated here: only a plain label selector counts as proof
    return all(pod_labels.get(key) == value for key, value in (selector.match_labels or {}).items())


def opens_traffic(policy: client.V1NetworkPolicy) -> bool:
    """True when the policy allows any ingress or egress (to whatever it selects)."""
    spec = policy.spec
    types = set(spec.policy_types or ["Ingress", *(["Egress"] if spec.egress else [])])
    return bool(("Ingress" in types and spec.ingress) or ("Egress" in types and spec.egress))


VARYING_LABELS = (EXECUTION_LABEL, POOL_LABEL)


def may_select_sandboxes(policy: client.V1NetworkPolicy) -> bool:
    """False only when the policy's pod selector certainly excludes sandbox pods: they carry SANDBOX_LABELS plus an
    execution label or a warm pool's label, whose values vary, so any selector that could match some execution
    or pool counts as selecting."""
    selector = policy.spec.pod_selector
    known = dict(SANDBOX_LABELS)
    for key, value in (selector.match_labels or {}).items():
        if key in VARYING_LABELS:
            continue  # selects one execution's or one pool's pods: still sandbox pods
        if known.get(key) != value:
            return False
    for expression in selector.match_expressions or []:
        key, operator, values = expression.key, expression.operator, set(expression.values or [])
        if key in VARYING_LABELS:
            continue  # a sandbox pod lacks one of them: DoesNotExist may match it too
        present = key in known
        if operator == "In" and (not present or known[key] not in values):
            return False
        if operator == "NotIn" and present and known[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def sandbox_state(pod: client.V1Pod) -> client.V1ContainerState | None:
    for container in pod.status.container_statuses or []:
        if container.name == CONTAINER:
            return container.state
    return None


def pod_finished(pod: client.V1Pod) -> bool:
    state = sandbox_state(pod)
    return pod.status.phase in ("Succeeded", "Failed") or bool(state and state.terminated)


def outcome_from_pod(pod: client.V1Pod, logs: str | None, limits_memory_mb: int) -> Outcome | None:
    """The outcome a finished (or failed-to-start) pod shows; None while it is still on its way."""
    state = sandbox_state(pod)
    waiting = state.waiting if state else None
    if waiting and waiting.reason in IMAGE_PULL_FAILURES:
        image = pod.spec.containers[0].image
        return Outcome.failure(
            Status.error, f"the sandbox image {image} cannot be pulled: {waiting.message or waiting.reason}"
        )
    if waiting and waiting.reason in START_FAILURES:
        return Outcome.failure(
            Status.error, f"the sandbox container could not start: {waiting.message or waiting.reason}"
        )
    if not pod_finished(pod):
        return None
    terminated = state.terminated if state else None
    oom_killed = bool(terminated and terminated.reason == "OOMKilled")
    if logs:
        try:
            outcome = parse_envelope(logs)
        except EnvelopeError:
            pass
        else:
            if oom_killed and outcome.status is Status.error:
                return Outcome.failure(Status.memory_exceeded, memory_exceeded_reason(limits_memory_mb))
            return outcome
    if oom_killed:
        return Outcome.failure(Status.memory_exceeded, memory_exceeded_reason(limits_memory_mb))
    if pod.status.reason == "DeadlineExceeded":
        if not program_started(pod):
            return never_started(pod, "before its deadline")
        return Outcome.failure(Status.timed_out, DEADLINE_EXCEEDED_REASON)
    if pod.status.reason == "Evicted":  # the kubelet's word, e.g. "... ephemeral local storage usage exceeds ..."
        return Outcome.failure(Status.error, f"the node evicted the sandbox: {pod.status.message or 'no reason given'}")
    detail = f" (exit {terminated.exit_code}, {terminated.reason})" if terminated else ""
    return Outcome.failure(Status.error, f"the sandbox ended without reporting a result{detail}")


class LogFollower:
    """Follows the sandbox's log from when it starts running, in a thread, and feeds the runner's live-output lines to
    `output`. The log is followed once: what a broken connection misses, LiveOutput.finish delivers at the end."""

    def __init__(self, core: client.CoreV1Api, namespace: str, output: OutputSink | None):
        self.core = core
        self.namespace = namespace
        self.runner = RunnerLines(output)
        self.enabled = output is not None
        self._thread: threading.Thread | None = None
        self._response: Any = None

    def follow(self, pod: client.V1Pod) -> None:
        state = sandbox_state(pod)
        if self.enabled and self._thread is None and state is not None and state.running is not None:
            self._thread = threading.Thread(target=self._read, args=(pod.metadata.name,), daemon=True)
            self._thread.start()

    def stop(self, seconds: float = 2.0) -> None:
        """The log ends when the sandbox does; give it `seconds` to drain, then cut it off."""
        if self._thread is None:
            return
        self._thread.join(seconds)
        if self._thread.is_alive() and self._response is not None:
            self._response.close()

    def _read(self, pod_name: str) -> None:
        try:
            self._response = self.core.read_namespaced_pod_log(
                pod_name, self.namespace, container=CONTAINER, follow=True, _preload_content=False
            )
            for piece in self._response.stream(None, decode_content=False):  # each piece as the server sends it
                self.runner.feed(piece)
        except Exception as exc:  # noqa: BLE001 - live output is best effort; the result comes from the final log
            log.info("stopped following the log of %s: %s", pod_name, exc)


def program_started(pod: client.V1Pod | None) -> bool:
    """True once the sandbox's container has started: its runner starts the program (and its clock) at once."""
    state = sandbox_state(pod) if pod is not None else None
    return bool(state and (state.running or (state.terminated and state.terminated.started_at)))


def waiting_on(pod: client.V1Pod | None) -> str:
    """What a sandbox that has not started is waiting on, as far as its pod's status tells."""
    if pod is None:
        return "its Job had no pod yet (the Job's events say why, e.g. a full ResourceQuota or a refused pod)"
    for condition in pod.status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False":
            return f"no node could run the sandbox: {condition.message or condition.reason}"
    state = sandbox_state(pod)
    waiting = state.waiting if state else None
    if state and state.terminated:
        return f"its container ended before it ran ({state.terminated.reason})"
    if waiting is None:
        return f"its pod was {pod.status.phase or 'not yet started'}"
    if waiting.message:
        return f"its container was waiting in {waiting.reason}: {waiting.message}"
    if waiting.reason == "ContainerCreating":
        return (
            "its container was waiting in ContainerCreating (its image, its input volume or its network; "
            "the pod's events say which)"
        )
    return f"its container was waiting in {waiting.reason}"


def never_started(pod: client.V1Pod | None, when: str) -> Outcome:
    """`error`: no program ran, so there is no time limit it could have passed."""
    return Outcome.failure(Status.error, f"the sandbox never started {when}: {waiting_on(pod)}")


def startup_outcome(pod: client.V1Pod | None, waited_seconds: float, schedule_timeout_seconds: float) -> Outcome | None:
    """`error` once a sandbox has waited past the start-up limit (for a node, its image, its volumes) without
    starting: the program's own time limit only starts when it runs."""
    if waited_seconds <= schedule_timeout_seconds or program_started(pod):
        return None
    return never_started(pod, f"within {schedule_timeout_seconds:g} s")


def outcome_of_vanished_job(job: client.V1Job | None, pod: client.V1Pod | None) -> Outcome:
    """Why a pod (last seen as `pod`; None: none was seen) disappeared without reporting: its Job's deadline, or
    someone deleted it."""
    for condition in (job.status.conditions or []) if job and job.status else []:
        if condition.reason == "DeadlineExceeded" and condition.status == "True":
            if not program_started(pod):
                return never_started(pod, "before its Job's deadline")
            return Outcome.failure(Status.timed_out, DEADLINE_EXCEEDED_REASON)
    return Outcome.failure(Status.error, "the sandbox pod was deleted before it reported a result")


RETRYABLE_STATUSES = {409, 429, 500, 503, 504}


def with_retries(call: Callable[..., T], *args: Any, attempts: int = 6, **kwargs: Any) -> T:
    """Retry what the API server asks us to retry: ResourceQuota update conflicts under concurrent
    creates, throttling and brief unavailability. An object that already exists is not retried."""
    for attempt in range(attempts):
        try:
            return call(*args, **kwargs)
        except ApiException as exc:
            transient = exc.status in RETRYABLE_STATUSES and "AlreadyExists" not in (exc.body or "")
            if not transient or attempt == attempts - 1:
                raise
            time.sleep(min(2.0, 0.05 * 2**attempt))
    raise AssertionError("unreachable")


class KubernetesBackend:
    name = "kubernetes"

    def __init__(self, settings: Settings, api_client: client.ApiClient | None = None):
        self.settings = settings
        self.namespace = settings.sandbox_namespace
        api_client = api_client or kubernetes_api_client()
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.networking = client.NetworkingV1Api(api_client)
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self.pool = WarmPodClaims(settings, self.batch, self.core)
        self._warm_jobs: dict[str, str] = {}  # execution id -> the pool Job serving it

    # Interface -------------------------------------------------------------
    def run(self, execution: Execution, output: OutputSink | None = None) -> Outcome:
        if self.is_cancelled(execution.id):
            return Outcome.cancelled()
        self.require_isolation()
        for _ in range(CLAIM_ATTEMPTS):
            claimed = self.pool.claim(execution)
            if claimed is None:
                break
            with self._lock:
                self._warm_jobs[execution.id] = claimed.job
            try:
                outcome = self.run_warm(claimed, execution, output)
            except AttachFailed as exc:  # no job reached the pod, so no code ran: another pod, or the cold path
                log.warning("execution %s: %s", execution.id, exc)
                self.forget_warm_job(execution.id)
                continue
            return outcome.model_copy(update={"sandbox_start": "warm"})
        return self.run_cold(execution, output).model_copy(update={"sandbox_start": "cold"})

    def run_warm(self, claimed: ClaimedPod, execution: Execution, output: OutputSink | None) -> Outcome:
        """The execution in a claimed pool pod: the runner's lines come back over the attach stream, or, if that
        breaks, from the pod's log once it ends."""
        log.info("execution %s runs in pool pod %s/%s", execution.id, self.namespace, claimed.pod)
        deadline = time.monotonic() + self.settings.sandbox_deadline(execution.limits)
        text = self.pool.run(claimed, execution, output, deadline)
        if text is not None:
            try:
                return parse_envelope(text)
            except EnvelopeError:
                log.warning(
                    "execution %s: pool pod %s sent no valid envelope; reading its log", execution.id, claimed.pod
                )
        if self.is_cancelled(execution.id):
            return Outcome.cancelled()
        return self.wait_for_outcome(execution, job=claimed.job)

    def run_cold(self, execution: Execution, output: OutputSink | None) -> Outcome:
        """The execution in a Job of its own, created for it."""
        manifest = build_sandbox_job(execution, self.settings)
        job = with_retries(self.batch.create_namespaced_job, self.namespace, manifest)
        manifest["metadata"]["uid"] = job.metadata.uid
        for secret in build_input_secrets(execution, manifest):
            try:
                with_retries(self.core.create_namespaced_secret, self.namespace, secret)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                # Someone made it first (the suspended Job names the execution): it must not reach the sandbox.
                self.delete_job(execution.id)
                raise SandboxUnavailable(
                    f"Secret {secret['metadata']['name']} already existed in {self.namespace}, not created by this "
                    "worker; refusing to run the execution with input that may have been planted"
                ) from exc
        with_retries(self.batch.patch_namespaced_job, job.metadata.name, self.namespace, {"spec": {"suspend": False}})
        log.info("execution %s runs as job %s/%s", execution.id, self.namespace, job.metadata.name)
        follower = LogFollower(self.core, self.namespace, output)  # live output, once the sandbox runs
        try:
            return self.wait_for_outcome(execution, follower)
        finally:
            follower.stop()

    def cancel(self, execution_id: str) -> None:
        with self._lock:
            self._cancelled.add(execution_id)
        self.delete_job(execution_id)

    def cleanup(self, execution_id: str) -> None:
        """Called once the result is recorded: the Job, its pod and its Secrets go."""
        with self._lock:
            self._cancelled.discard(execution_id)
        self.delete_job(execution_id)

    def recover(self, execution: Execution) -> Outcome | None:
        """Harvest the result of an execution whose worker died: the pod may have finished without it."""
        pods = self.execution_pods(execution.id)
        for pod in pods:
            state = sandbox_state(pod)
            if pod_finished(pod) or (state and state.waiting):
                outcome = outcome_from_pod(pod, self.read_logs(pod.metadata.name), execution.limits.memory_mb)
                if outcome is not None:
                    return outcome
        if not pods and self.job_gone(job_name(execution.id)):
            return Outcome.failure(Status.error, LOST_WORKER_REASON)
        started = (execution.started_at or execution.created_at).timestamp()
        if time.time() > started + self.settings.worker_deadline(execution.limits):
            if pods and not any(program_started(pod) for pod in pods):
                return never_started(pods[0], "by its deadline (its worker was lost)")
            return Outcome.failure(Status.error, "the sandbox did not finish by its deadline and its worker was lost")
        return None

    def execution_pods(self, execution_id: str) -> list[client.V1Pod]:
        """The pods of the execution's own Job, or else of the pool Job claimed for it (pool pods are made before
        their execution is known, so only their Job names it)."""
        selector = execution_selector(execution_id)
        if pods := self.core.list_namespaced_pod(self.namespace, label_selector=selector).items:
            return list(pods)
        jobs = self.batch.list_namespaced_job(self.namespace, label_selector=selector).items
        return [
            pod
            for job in jobs
            for pod in self.core.list_namespaced_pod(
                self.namespace, label_selector=f"job-name={job.metadata.name}"
            ).items
        ]

    # Steps -----------------------------------------------------------------
    def require_isolation(self) -> None:
        """Fail closed: refuse to run code unless a deny-all NetworkPolicy selects sandbox pods, no policy opens any
        traffic to or from them (policies add up), and their ServiceAccount exists and mounts no token."""
        try:
            policies = self.networking.list_namespaced_network_policy(self.namespace).items
        except ApiException as exc:
            raise SandboxUnavailable(
                f"cannot verify the sandbox NetworkPolicy in {self.namespace}: {exc.reason}"
            ) from exc
        if not any(is_deny_all(policy, SANDBOX_LABELS) for policy in policies):
            raise SandboxUnavailable(
                f"namespace {self.namespace} has no deny-all NetworkPolicy (ingress and egress) selecting sandbox pods; "
                "refusing to run code with network access"
            )
        if opening := [p.metadata.name for p in policies if opens_traffic(p) and may_select_sandboxes(p)]:
            raise SandboxUnavailable(
                f"NetworkPolicy {', '.join(sorted(opening))} in {self.namespace} allows traffic to or from sandbox pods; "
                "refusing to run code with network access"
            )
        name = self.settings.sandbox_service_account
        try:
            account = self.core.read_namespaced_service_account(name, self.namespace)
        except ApiException as exc:
            raise SandboxUnavailable(
                f"cannot read the sandbox ServiceAccount {name} in {self.namespace}: {exc.reason}"
            ) from exc
        if account.automount_service_account_token is not False:
            raise SandboxUnavailable(
                f"ServiceAccount {name} in {self.namespace} does not set "
                "automountServiceAccountToken: false; refusing to run code that could get a token"
            )

    def forget_warm_job(self, execution_id: str) -> None:
        """Delete the pool Job that served (or was claimed for) the execution, if any."""
        with self._lock:
            name = self._warm_jobs.pop(execution_id, None)
        if name:
            self.pool.release(name)

    def delete_job(self, execution_id: str) -> None:
        self.forget_warm_job(execution_id)
        try:
            self.batch.delete_namespaced_job(
                job_name(execution_id), self.namespace, propagation_policy="Background", grace_period_seconds=0
            )
        except ApiException as exc:
            if exc.status != 404:
                log.warning("could not delete job %s: %s", job_name(execution_id), exc.reason)

    def wait_for_outcome(
        self, execution: Execution, follower: LogFollower | None = None, job: str | None = None
    ) -> Outcome:
        """Follow the execution's pod (its own Job's, or the pool Job `job`'s) until it ends, is lost, has not
        started by the start-up limit, or the worker's deadline passes."""
        started = time.monotonic()
        start_by = started + self.settings.schedule_timeout_seconds
        deadline = started + self.settings.worker_deadline(execution.limits)
        latest: client.V1Pod | None = None  # the pod as last seen
        selector = f"job-name={job}" if job else execution_selector(execution.id)
        job = job or job_name(execution.id)
        for event_type, pod in self.pod_events(selector, deadline, wake_at=start_by):
            if self.is_cancelled(execution.id):
                return Outcome.cancelled()
            if pod is None:  # a quiet watch round: no pod event comes for a Job deleted before its pod existed,
                # nor for a sandbox stuck starting
                if latest is None and self.job_gone(job):
                    return outcome_of_vanished_job(None, None)
                waited = time.monotonic() - started
                if outcome := startup_outcome(latest, waited, self.settings.schedule_timeout_seconds):
                    return outcome
                continue
            latest = pod
            if follower is not None:
                follower.follow(pod)
            outcome = self.check_pod(pod, execution, time.monotonic() - started)
            if outcome is None and event_type == "DELETED":
                outcome = outcome_of_vanished_job(self.read_job(job), pod)
            if outcome is not None:
                return outcome
        if not program_started(latest):
            return never_started(latest, "before the worker's deadline")
        return Outcome.failure(Status.timed_out, "the sandbox did not finish before its deadline")

    def pod_events(
        self, selector: str, deadline: float, wake_at: float | None = None
    ) -> Iterator[tuple[str, client.V1Pod | None]]:
        """The pods `selector` picks as (event type, pod) until `deadline` (time.monotonic()): first a list, then a
        watch from the list's resourceVersion. A stale version (410 Gone, as an exception or an ERROR event) lists
        again; a closed stream watches again. After each watch round, (ROUND_ENDED, None); a round also ends at
        `wake_at`, so the caller can look around then even if no event comes."""
        resource_version = None
        while (remaining := deadline - time.monotonic()) > 0:
            if resource_version is None:
                listing = self.core.list_namespaced_pod(self.namespace, label_selector=selector)
                resource_version = listing.metadata.resource_version
                for pod in listing.items:
                    yield "LISTED", pod
            round_seconds = min(WATCH_SECONDS, int(remaining))
            if wake_at is not None and (to_wake := wake_at - time.monotonic()) > 0:
                round_seconds = min(round_seconds, math.ceil(to_wake))
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.core.list_namespaced_pod,
                    self.namespace,
                    label_selector=selector,
                    resource_version=resource_version,
                    timeout_seconds=max(1, round_seconds),
                    allow_watch_bookmarks=True,
                ):
                    if event["type"] == "ERROR":
                        # The server ends a watch it cannot serve with an ERROR event carrying a Status.
                        status = event["raw_object"]
                        if status.get("code") == 410:
                            resource_version = None
                            break
                        raise ApiException(status=status.get("code"), reason=status.get("message"))
                    if event["type"] == "BOOKMARK":  # the client leaves a bookmark's object undeserialised (a dict)
                        resource_version = event["raw_object"]["metadata"]["resourceVersion"]
                        continue
                    pod = event["object"]
                    resource_version = pod.metadata.resource_version
                    yield event["type"], pod
            except ApiException as exc:
                if exc.status != 410:
                    raise
                resource_version = None
            except ProtocolError:  # the server closed the stream: watch again from where we were
                pass
            finally:
                stream.stop()
            yield ROUND_ENDED, None

    def check_pod(self, pod: client.V1Pod, execution: Execution, waited_seconds: float) -> Outcome | None:
        logs = self.read_logs(pod.metadata.name) if pod_finished(pod) else None
        return outcome_from_pod(pod, logs, execution.limits.memory_mb) or startup_outcome(
            pod, waited_seconds, self.settings.schedule_timeout_seconds
        )

    def read_logs(self, pod_name: str) -> str | None:
        try:
            # Raw bytes: the client would otherwise try to deserialise a JSON-looking log.
            response = self.core.read_namespaced_pod_log(
                pod_name, self.namespace, container=CONTAINER, _preload_content=False
            )
            return str(response.data.decode("utf-8", errors="replace"))
        except ApiException as exc:
            log.warning("cannot read the log of %s: %s", pod_name, exc.reason)
            return None

    def read_job(self, name: str) -> client.V1Job | None:
        """The Job `name`, or None when it is gone or cannot be read."""
        try:
            return self.batch.read_namespaced_job(name, self.namespace)
        except ApiException:
            return None

    def job_gone(self, name: str) -> bool:
        """True only when the API server says the Job `name` does not exist (any other error proves nothing)."""
        try:
            self.batch.read_namespaced_job(name, self.namespace)
            return False
        except ApiException as exc:
            return exc.status == 404

    def is_cancelled(self, execution_id: str) -> bool:
        with self._lock:
            return execution_id in self._cancelled
