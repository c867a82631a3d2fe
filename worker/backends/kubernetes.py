"""The Kubernetes backend: one ephemeral Job per execution, in the sandbox namespace.

The Job's pod runs the sandbox image's runner as PID 1, as a fixed non-root
UID, with a read-only root, no capabilities, RuntimeDefault seccomp, no
service-account token and a memory-backed /tmp. The code and stdin travel in
two Secrets owned by the Job (each Secret holds at most 1 MiB), so deleting the
Job deletes them. The worker refuses to run code unless a deny-all
NetworkPolicy selects the sandbox pods (fail closed), waits for the pod by
watch, reads the runner's envelope from the pod log, and deletes the Job once
the result is recorded.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError

from executioner.models import Execution, Outcome, Status
from executioner.runner_protocol import CODE_PATH, INPUT_DIR, RUNNER_PATH, STDIN_PATH, EnvelopeError, parse_envelope, runner_args
from executioner.settings import Settings
from executioner.worker.backends.base import LOST_WORKER_REASON, SandboxUnavailable

log = logging.getLogger(__name__)

CONTAINER = "sandbox"
SANDBOX_LABELS = {"app.kubernetes.io/name": "executioner-sandbox", "app.kubernetes.io/managed-by": "executioner"}
EXECUTION_LABEL = "executioner.dev/execution-id"
IMAGE_PULL_FAILURES = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
START_FAILURES = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
WATCH_SECONDS = 30  # each watch call's server-side timeout; the loop re-watches until the deadline


def job_name(execution_id: str) -> str:
    return f"exec-{execution_id}"


def kubernetes_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster credentials first, a kubeconfig (KUBECONFIG by default) as the fallback."""
    if kubeconfig is None:
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(configuration)
        except config.ConfigException:
            pass
    # Read KUBECONFIG now: the client library's own default is fixed when it is first imported.
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    return config.new_client_from_config(config_file=kubeconfig)


def sandbox_labels(execution_id: str) -> dict[str, str]:
    return {**SANDBOX_LABELS, EXECUTION_LABEL: execution_id}


def build_sandbox_job(execution: Execution, settings: Settings) -> dict:
    """The Job for one execution (a plain manifest: built here, sent elsewhere)."""
    labels = sandbox_labels(execution.id)
    memory = f"{execution.limits.memory_mb}Mi"
    pod_spec: dict = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 0,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": CONTAINER,
                "image": settings.sandbox_image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["python3", "-I", "-S", RUNNER_PATH],
                # The kubelet's pod pids limit bounds processes here: RLIMIT_NPROC would count
                # every pod of this UID on the node together.
                "args": runner_args(execution, settings, memory_rlimit=False, max_processes=0),
                "resources": {
                    "requests": {"memory": memory, "cpu": "50m"},
                    "limits": {"memory": memory, "cpu": f"{settings.cpu_limit:g}"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "privileged": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "input", "mountPath": INPUT_DIR, "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [
            {
                "name": "input",
                "projected": {
                    "defaultMode": 0o444,
                    "sources": [
                        {"secret": {"name": f"{job_name(execution.id)}-code", "items": [{"key": "code", "path": CODE_PATH.rsplit("/", 1)[1]}]}},
                        {"secret": {"name": f"{job_name(execution.id)}-stdin", "items": [{"key": "stdin", "path": STDIN_PATH.rsplit("/", 1)[1]}]}},
                    ],
                },
            },
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": f"{settings.tmp_size_mb}Mi"}},
        ],
    }
    if settings.runtime_class_name:
        pod_spec["runtimeClassName"] = settings.runtime_class_name
    if settings.sandbox_node_selector:
        pod_spec["nodeSelector"] = settings.sandbox_node_selector
    if settings.sandbox_tolerations:
        pod_spec["tolerations"] = settings.sandbox_tolerations
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(execution.id), "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": math.ceil(execution.limits.timeout_seconds + settings.grace_seconds),
            "ttlSecondsAfterFinished": settings.job_ttl_seconds,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def build_input_secrets(execution: Execution, job: dict) -> list[dict]:
    """Code and stdin, owned by the Job so they go when it goes."""
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": job["metadata"]["name"],
        "uid": job["metadata"]["uid"],
        "controller": False,
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "immutable": True,
            "metadata": {
                "name": f"{job['metadata']['name']}-{key}",
                "labels": sandbox_labels(execution.id),
                "ownerReferences": [owner],
            },
            "stringData": {key: value},
        }
        for key, value in (("code", execution.code), ("stdin", execution.stdin))
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
    status = pod.status
    state = sandbox_state(pod)
    if state and state.waiting and state.waiting.reason in IMAGE_PULL_FAILURES:
        image = pod.spec.containers[0].image
        return Outcome(status=Status.error, error=f"the sandbox image {image} cannot be pulled: {state.waiting.message or state.waiting.reason}")
    if state and state.waiting and state.waiting.reason in START_FAILURES:
        return Outcome(status=Status.error, error=f"the sandbox container could not start: {state.waiting.message or state.waiting.reason}")
    if not pod_finished(pod):
        return None
    terminated = state.terminated if state else None
    if logs:
        try:
            outcome = parse_envelope(logs)
        except EnvelopeError:
            pass
        else:
            if terminated and terminated.reason == "OOMKilled" and outcome.status is Status.error:
                return Outcome(status=Status.memory_exceeded, error=f"the program used more than {limits_memory_mb} MiB of memory")
            return outcome
    if terminated and terminated.reason == "OOMKilled":
        return Outcome(status=Status.memory_exceeded, error=f"the program used more than {limits_memory_mb} MiB of memory")
    if status.reason == "DeadlineExceeded":
        return Outcome(status=Status.timed_out, error="the sandbox ran past its deadline and was stopped")
    detail = f" (exit {terminated.exit_code}, {terminated.reason})" if terminated else ""
    return Outcome(status=Status.error, error=f"the sandbox ended without reporting a result{detail}")


RETRYABLE_STATUSES = {409, 429, 500, 503, 504}


def with_retries(call, *args, attempts: int = 6, **kwargs):
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

    # Interface -------------------------------------------------------------
    def run(self, execution: Execution) -> Outcome:
        if self.is_cancelled(execution.id):
            return Outcome(status=Status.cancelled, error="cancelled by request")
        self.require_network_policy()
        manifest = build_sandbox_job(execution, self.settings)
        job = with_retries(self.batch.create_namespaced_job, self.namespace, manifest)
        manifest["metadata"]["uid"] = job.metadata.uid
        for secret in build_input_secrets(execution, manifest):
            with_retries(self.core.create_namespaced_secret, self.namespace, secret)
        log.info("execution %s runs as job %s/%s", execution.id, self.namespace, job.metadata.name)
        return self.wait_for_outcome(execution)

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
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"{EXECUTION_LABEL}={execution.id}").items
        for pod in pods:
            if pod_finished(pod) or sandbox_state(pod) and sandbox_state(pod).waiting:
                outcome = outcome_from_pod(pod, self.read_logs(pod.metadata.name), execution.limits.memory_mb)
                if outcome is not None:
                    return outcome
        if not pods and self.job_vanished(execution.id):
            return Outcome(status=Status.error, error=LOST_WORKER_REASON)
        started = (execution.started_at or execution.created_at).timestamp()
        deadline = started + execution.limits.timeout_seconds + self.settings.grace_seconds + self.settings.schedule_timeout_seconds
        if time.time() > deadline:
            return Outcome(status=Status.error, error="the sandbox did not finish by its deadline and its worker was lost")
        return None

    # Steps -----------------------------------------------------------------
    def require_network_policy(self) -> None:
        try:
            policies = self.networking.list_namespaced_network_policy(self.namespace).items
        except ApiException as exc:
            raise SandboxUnavailable(f"cannot verify the sandbox NetworkPolicy in {self.namespace}: {exc.reason}") from exc
        if not any(is_deny_all(policy, SANDBOX_LABELS) for policy in policies):
            raise SandboxUnavailable(
                f"namespace {self.namespace} has no deny-all NetworkPolicy (ingress and egress) selecting sandbox pods; "
                "refusing to run code with network access"
            )

    def delete_job(self, execution_id: str) -> None:
        try:
            self.batch.delete_namespaced_job(
                job_name(execution_id), self.namespace, propagation_policy="Background", grace_period_seconds=0
            )
        except ApiException as exc:
            if exc.status != 404:
                log.warning("could not delete job %s: %s", job_name(execution_id), exc.reason)

    def wait_for_outcome(self, execution: Execution) -> Outcome:
        """Watch the execution's pod until it ends, is lost, or the deadline passes."""
        started = time.monotonic()
        deadline = started + execution.limits.timeout_seconds + self.settings.grace_seconds + self.settings.schedule_timeout_seconds
        selector = f"{EXECUTION_LABEL}={execution.id}"
        resource_version = None
        seen_pod = False
        while True:
            if self.is_cancelled(execution.id):
                return Outcome(status=Status.cancelled, error="cancelled by request")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Outcome(status=Status.timed_out, error="the sandbox did not finish before its deadline")
            if resource_version is None:
                # (Re)list: the current state, and the version the next watch starts from.
                listing = self.core.list_namespaced_pod(self.namespace, label_selector=selector)
                resource_version = listing.metadata.resource_version
                for pod in listing.items:
                    seen_pod = True
                    if (outcome := self.check_pod(pod, execution, started)) is not None:
                        return outcome
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.core.list_namespaced_pod,
                    self.namespace,
                    label_selector=selector,
                    resource_version=resource_version,
                    timeout_seconds=max(1, min(WATCH_SECONDS, int(remaining))),
                    allow_watch_bookmarks=True,
                ):
                    if event["type"] == "ERROR":
                        # The server ends a watch it cannot serve with an ERROR event (a Status, not a pod);
                        # 410 Gone means our resourceVersion is too old: list again.
                        status = event["raw_object"]
                        if status.get("code") == 410:
                            resource_version = None
                            break
                        raise ApiException(status=status.get("code"), reason=status.get("message"))
                    pod = event["object"]
                    resource_version = pod.metadata.resource_version
                    if event["type"] == "BOOKMARK":
                        continue
                    seen_pod = True
                    if event["type"] == "DELETED":
                        if self.is_cancelled(execution.id):
                            return Outcome(status=Status.cancelled, error="cancelled by request")
                        if (outcome := self.check_pod(pod, execution, started)) is not None:
                            return outcome
                        return self.outcome_of_vanished_pod(execution)
                    if (outcome := self.check_pod(pod, execution, started)) is not None:
                        return outcome
            except ApiException as exc:
                if exc.status == 410:  # our resourceVersion is too old: list again
                    resource_version = None
                    continue
                raise
            except ProtocolError:  # the server closed the stream: watch again from where we were
                continue
            finally:
                stream.stop()
            if not seen_pod and self.job_vanished(execution.id):
                return self.outcome_of_vanished_pod(execution)

    def check_pod(self, pod: client.V1Pod, execution: Execution, started: float) -> Outcome | None:
        logs = self.read_logs(pod.metadata.name) if pod_finished(pod) else None
        outcome = outcome_from_pod(pod, logs, execution.limits.memory_mb)
        if outcome is None and time.monotonic() - started > self.settings.schedule_timeout_seconds:
            for condition in pod.status.conditions or []:
                if condition.type == "PodScheduled" and condition.status == "False":
                    return Outcome(
                        status=Status.error,
                        error=f"no node could run the sandbox within {self.settings.schedule_timeout_seconds:g} s: {condition.message}",
                    )
        return outcome

    def read_logs(self, pod_name: str) -> str | None:
        try:
            # Raw bytes: the client would otherwise try to deserialise a JSON-looking log.
            response = self.core.read_namespaced_pod_log(pod_name, self.namespace, container=CONTAINER, _preload_content=False)
            return response.data.decode("utf-8", errors="replace")
        except ApiException as exc:
            log.warning("cannot read the log of %s: %s", pod_name, exc.reason)
            return None

    def job_vanished(self, execution_id: str) -> bool:
        try:
            self.batch.read_namespaced_job(job_name(execution_id), self.namespace)
            return False
        except ApiException as exc:
            return exc.status == 404

    def outcome_of_vanished_pod(self, execution: Execution) -> Outcome:
        try:
            job = self.batch.read_namespaced_job(job_name(execution.id), self.namespace)
            for condition in job.status.conditions or []:
                if condition.reason == "DeadlineExceeded" and condition.status == "True":
                    return Outcome(status=Status.timed_out, error="the sandbox ran past its deadline and was stopped")
        except ApiException:
            pass
        return Outcome(status=Status.error, error="the sandbox pod was deleted before it reported a result")

    def is_cancelled(self, execution_id: str) -> bool:
        with self._lock:
            return execution_id in self._cancelled
