"""The Kubernetes backend's pure parts: the Job it builds, the policy it accepts as proof, what a pod's state means."""

from __future__ import annotations

import base64
import datetime
import json

import pytest
from kubernetes import client

from executioner.kube import EXECUTION_LABEL, POOL_LABEL, POOL_STATE_LABEL, POOL_WAITING, SANDBOX_LABELS, job_name
from executioner.models import Execution, InputFile, Limits, Status
from executioner.runner_protocol import FILES_MANIFEST_PATH, INPUT_DIR, input_file_source
from executioner.settings import Settings
from executioner.worker.backends.kubernetes import (
    CONTAINER,
    DEADLINE_EXCEEDED_REASON,
    build_input_secrets,
    build_sandbox_job,
    is_deny_all,
    may_select_sandboxes,
    opens_traffic,
    outcome_from_pod,
    outcome_of_vanished_job,
    startup_outcome,
)
from executioner.worker.backends.sandbox_pods import build_pool_job


def execution(timeout: float = 5, memory_mb: int = 128) -> Execution:
    return Execution.new(
        code="print('hi')",
        stdin="in",
        limits=Limits(timeout_seconds=timeout, memory_mb=memory_mb),
        backend="kubernetes",
        status=Status.running,
    )


def test_job_spec_is_locked_down():
    settings = Settings(sandbox_image="executioner/sandbox:0.1.0", runtime_class_name="gvisor")
    job = build_sandbox_job(execution(timeout=7, memory_mb=96), settings)
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    # a backstop past the worker's own deadline: start-up (up to the schedule timeout) never eats into the 7 s
    assert spec["activeDeadlineSeconds"] == 7 + settings.grace_seconds + settings.schedule_timeout_seconds
    assert spec["ttlSecondsAfterFinished"] == settings.job_ttl_seconds
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["runtimeClassName"] == "gvisor"
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)
    assert all("hostPath" not in volume for volume in pod["volumes"])
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65534
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    # requests equal limits: Guaranteed QoS; and the node's disk is shared: a sandbox reserves and may use only
    # this much of it (log and writable layer)
    storage = f"{settings.sandbox_ephemeral_storage_mb}Mi"
    assert (
        container["resources"]["requests"]
        == container["resources"]["limits"]
        == {
            "memory": "96Mi",
            "cpu": "0.5",
            "ephemeral-storage": storage,
        }
    )
    assert pod["serviceAccountName"] == "executioner-sandbox"
    assert "hostUsers" not in pod  # the runtime's default unless asked for
    assert (
        build_sandbox_job(execution(), Settings(sandbox_host_users=False))["spec"]["template"]["spec"]["hostUsers"]
        is False
    )
    # no pod until the worker resumes it, once the input Secrets (owned by the Job) exist
    assert spec["suspend"] is True
    tmp = next(volume for volume in pod["volumes"] if volume["name"] == "tmp")
    assert tmp["emptyDir"] == {"medium": "Memory", "sizeLimit": f"{settings.tmp_size_mb}Mi"}
    assert spec["template"]["metadata"]["labels"][EXECUTION_LABEL]


def test_sandbox_pods_have_no_dns_server_to_wait_for():
    # the deny-all policy drops packets to a cluster DNS server: a lookup would hang until the time limit
    for manifest in (build_sandbox_job(execution(), Settings()), build_pool_job("python", Settings())):
        pod = manifest["spec"]["template"]["spec"]
        assert pod["dnsPolicy"] == "None"
        assert pod["dnsConfig"]["nameservers"] == ["127.0.0.1"]


def test_a_pool_pod_is_a_sandbox_whose_runner_waits_on_stdin():
    settings = Settings(runtime_class_name="gvisor")
    job = build_pool_job("python-data", settings)
    cold = build_sandbox_job(execution(), settings)["spec"]["template"]["spec"]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["--job-on-stdin"]
    assert container["stdin"] is True and container["stdinOnce"] is True
    assert container["image"] == settings.runtime_images["python-data"]
    # the runtime's default memory: only executions with that limit take a pool pod; a waiting runner uses no CPU,
    # so the pod reserves little, and is held to the same CPU limit
    resources = container["resources"]
    assert resources["limits"]["memory"] == resources["requests"]["memory"] == "384Mi"
    assert resources["limits"]["cpu"] == "0.5" and resources["requests"]["cpu"] == "0.05"
    # the same protections as a cold sandbox
    for key in ("securityContext", "automountServiceAccountToken", "runtimeClassName", "dnsPolicy"):
        assert pod[key] == cold[key]
    assert container["securityContext"] == cold["containers"][0]["securityContext"]
    assert job["spec"]["template"]["metadata"]["labels"] == {**SANDBOX_LABELS, POOL_LABEL: "python-data"}
    assert job["metadata"]["labels"][POOL_STATE_LABEL] == POOL_WAITING
    assert "activeDeadlineSeconds" not in job["spec"]  # it waits as long as it takes; a claim sets one


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (Settings(), {}),
        (Settings(sandbox_node_selector={"pool": "sandbox"}), {"nodeSelector": {"pool": "sandbox"}}),
        (
            Settings(sandbox_tolerations=[{"key": "sandbox", "operator": "Exists"}]),
            {"tolerations": [{"key": "sandbox", "operator": "Exists"}]},
        ),
    ],
)
def test_job_scheduling_follows_the_settings(settings, expected):
    pod = build_sandbox_job(execution(), settings)["spec"]["template"]["spec"]
    assert {key: pod[key] for key in ("nodeSelector", "tolerations", "runtimeClassName") if key in pod} == expected


def test_input_secrets_are_immutable_and_owned_by_the_job():
    run = execution()
    job = build_sandbox_job(run, Settings())
    job["metadata"]["uid"] = "uid-1"
    secrets = build_input_secrets(run, job)
    assert [s["data"] for s in secrets] == [{"code": b64("print('hi')")}, {"stdin": b64("in")}]
    for secret in secrets:
        assert secret["immutable"] is True
        assert secret["metadata"]["ownerReferences"] == [
            {"apiVersion": "batch/v1", "kind": "Job", "name": job_name(run.id), "uid": "uid-1", "controller": False}
        ]
    # The pod mounts exactly these Secrets.
    projected = next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "input")["projected"]
    assert {s["secret"]["name"] for s in projected["sources"]} == {s["metadata"]["name"] for s in secrets}


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def test_each_input_file_travels_in_its_own_secret_with_a_manifest_beside_the_code():
    png = bytes(range(256)) * 4  # raw bytes, not text
    run = execution().model_copy(
        update={
            "runtime": "python-data",
            "files": [
                InputFile(path="data.csv", content_base64=b64("a,b\n1,2\n")),
                InputFile(path="in/x.bin", content_base64=b64(png)),
            ],
        }
    )
    settings = Settings(runtime_images={"python-data": "registry.example/sandbox-python-data:1"})
    job = build_sandbox_job(run, settings)
    job["metadata"]["uid"] = "uid-1"
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/sandbox-python-data:1"
    assert build_sandbox_job(execution(), settings)["spec"]["template"]["spec"]["containers"][0]["image"] == (
        settings.sandbox_image
    )
    code, stdin, *files = build_input_secrets(run, job)
    name = job_name(run.id)
    assert [s["metadata"]["name"] for s in files] == [f"{name}-file-0", f"{name}-file-1"]
    assert [base64.b64decode(s["data"]["content"]) for s in files] == [b"a,b\n1,2\n", png]
    manifest = json.loads(base64.b64decode(code["data"]["files.json"]))
    assert manifest == [
        {"path": "data.csv", "source": input_file_source(0)},
        {"path": "in/x.bin", "source": input_file_source(1)},
    ]
    # mounted where the manifest says, the manifest where the runner reads it
    projected = next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "input")["projected"]
    mounted = {
        f"{INPUT_DIR}/{item['path']}": (source["secret"]["name"], item["key"])
        for source in projected["sources"]
        for item in source["secret"]["items"]
    }
    assert mounted[FILES_MANIFEST_PATH] == (f"{name}-code", "files.json")
    assert mounted[input_file_source(1)] == (f"{name}-file-1", "content")
    assert {s["secret"]["name"] for s in projected["sources"]} == {s["metadata"]["name"] for s in (code, stdin, *files)}
    # without files, no manifest
    assert "files.json" not in build_input_secrets(execution(), job)[0]["data"]


def policy(types=("Ingress", "Egress"), ingress=None, egress=None, labels=None, expressions=None):
    return client.V1NetworkPolicy(
        spec=client.V1NetworkPolicySpec(
            policy_types=list(types),
            ingress=ingress,
            egress=egress,
            pod_selector=client.V1LabelSelector(match_labels=labels, match_expressions=expressions),
        )
    )


ALLOW_ALL = [client.V1NetworkPolicyEgressRule()]


@pytest.mark.parametrize(
    ("case", "network_policy", "deny_all"),
    [
        ("empty selector, both directions", policy(), True),
        ("sandbox labels, both directions", policy(labels=dict(SANDBOX_LABELS)), True),
        ("one sandbox label", policy(labels={"app.kubernetes.io/name": "executioner-sandbox"}), True),
        ("ingress only", policy(types=("Ingress",)), False),
        ("egress only", policy(types=("Egress",)), False),
        ("an egress rule", policy(egress=ALLOW_ALL), False),
        ("an ingress rule", policy(ingress=[client.V1NetworkPolicyIngressRule()]), False),
        ("selects other pods", policy(labels={"app": "web"}), False),
        (
            "match expressions",
            policy(expressions=[client.V1LabelSelectorRequirement(key="a", operator="Exists")]),
            False,
        ),
    ],
)
def test_is_deny_all(case, network_policy, deny_all):
    assert is_deny_all(network_policy, SANDBOX_LABELS) is deny_all, case


DNS_EGRESS = [client.V1NetworkPolicyEgressRule(ports=[client.V1NetworkPolicyPort(port=53, protocol="UDP")])]


def expression(key, operator, *values):
    return client.V1LabelSelectorRequirement(key=key, operator=operator, values=list(values) or None)


@pytest.mark.parametrize(
    ("case", "network_policy", "refused"),
    [
        ("the deny-all itself", policy(), False),
        ("allow-all egress, every pod", policy(types=("Egress",), egress=ALLOW_ALL), True),
        ("DNS egress for sandboxes", policy(types=("Egress",), egress=DNS_EGRESS, labels=dict(SANDBOX_LABELS)), True),
        ("ingress from anywhere", policy(types=("Ingress",), ingress=[client.V1NetworkPolicyIngressRule()]), True),
        ("egress rules ignored by an ingress-only policy", policy(types=("Ingress",), egress=ALLOW_ALL), False),
        ("one execution's pod", policy(egress=ALLOW_ALL, labels={EXECUTION_LABEL: "abc"}), True),
        ("other pods by label", policy(egress=ALLOW_ALL, labels={"app": "web"}), False),
        (
            "other pods by expression",
            policy(egress=ALLOW_ALL, expressions=[expression("app.kubernetes.io/name", "In", "web")]),
            False,
        ),
        (
            "sandboxes by expression",
            policy(egress=ALLOW_ALL, expressions=[expression("app.kubernetes.io/name", "NotIn", "web")]),
            True,
        ),
        (
            # warm-pool pods never carry an execution label: they are sandboxes all the same
            "pods without an execution",
            policy(egress=ALLOW_ALL, expressions=[expression(EXECUTION_LABEL, "DoesNotExist")]),
            True,
        ),
        ("one warm pool's pods", policy(egress=ALLOW_ALL, labels={POOL_LABEL: "python"}), True),
        ("pods with an unknown label", policy(egress=ALLOW_ALL, expressions=[expression("team", "Exists")]), False),
    ],
)
def test_any_policy_opening_sandbox_traffic_is_refused(case, network_policy, refused):
    assert (opens_traffic(network_policy) and may_select_sandboxes(network_policy)) is refused, case


STARTED_AT = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def pod(phase="Running", waiting=None, terminated=None, reason=None, conditions=None, waiting_message="auto"):
    """A sandbox pod as the API shows it; its container runs while the pod does (phase Running)."""
    state = client.V1ContainerState(
        waiting=client.V1ContainerStateWaiting(
            reason=waiting, message=f"{waiting} message" if waiting_message == "auto" else waiting_message
        )
        if waiting
        else None,
        running=client.V1ContainerStateRunning(started_at=STARTED_AT)
        if phase == "Running" and not (waiting or terminated)
        else None,
        terminated=client.V1ContainerStateTerminated(
            exit_code=terminated[0], reason=terminated[1], started_at=STARTED_AT
        )
        if terminated
        else None,
    )
    return client.V1Pod(
        spec=client.V1PodSpec(containers=[client.V1Container(name=CONTAINER, image="sandbox:1")]),
        status=client.V1PodStatus(
            phase=phase,
            reason=reason,
            conditions=conditions,
            container_statuses=[
                client.V1ContainerStatus(
                    name=CONTAINER, image="sandbox:1", image_id="", ready=False, restart_count=0, state=state
                )
            ],
        ),
    )


ENVELOPE = json.dumps(
    {
        "v": 1,
        "status": "succeeded",
        "exit_code": 0,
        "stdout": "hi\n",
        "stderr": "",
        "stdout_truncated": False,
        "stderr_truncated": False,
        "duration_ms": 3,
    }
)
ERROR_ENVELOPE = json.dumps({"v": 1, "status": "error", "error": "killed"})


@pytest.mark.parametrize(
    ("case", "the_pod", "logs", "status", "error_contains"),
    [
        ("still running", pod(), None, None, None),
        ("pending", pod(phase="Pending"), None, None, None),
        ("image pull", pod(phase="Pending", waiting="ImagePullBackOff"), None, Status.error, "cannot be pulled"),
        (
            "bad config",
            pod(phase="Pending", waiting="CreateContainerConfigError"),
            None,
            Status.error,
            "could not start",
        ),
        ("succeeded", pod(phase="Succeeded", terminated=(0, "Completed")), ENVELOPE, Status.succeeded, None),
        (
            "runner error, OOMKilled",
            pod(phase="Failed", terminated=(137, "OOMKilled")),
            ERROR_ENVELOPE,
            Status.memory_exceeded,
            "more than 96 MiB",
        ),
        (
            "OOMKilled, no envelope",
            pod(phase="Failed", terminated=(137, "OOMKilled")),
            "",
            Status.memory_exceeded,
            "96 MiB",
        ),
        (
            "deadline, the program ran",
            pod(phase="Failed", reason="DeadlineExceeded", terminated=(137, "Error")),
            None,
            Status.timed_out,
            DEADLINE_EXCEEDED_REASON,
        ),
        (
            "deadline, the sandbox never started",
            pod(phase="Failed", reason="DeadlineExceeded", waiting="ContainerCreating", waiting_message=None),
            None,
            Status.error,
            "the sandbox never started before its deadline: its container was waiting in ContainerCreating (",
        ),
        ("garbage log", pod(phase="Failed", terminated=(1, "Error")), "not json", Status.error, "(exit 1, Error)"),
        (
            "forged-looking last line",
            pod(phase="Succeeded", terminated=(0, "Completed")),
            '{"v": 2}',
            Status.error,
            "without reporting",
        ),
    ],
)
def test_outcome_from_pod(case, the_pod, logs, status, error_contains):
    outcome = outcome_from_pod(the_pod, logs, limits_memory_mb=96)
    if status is None:
        assert outcome is None, case
        return
    assert outcome is not None and outcome.status is status, (case, outcome)
    if error_contains:
        assert error_contains in (outcome.error or ""), (case, outcome)


def test_an_evicted_sandbox_ends_error_with_the_kubelets_reason():
    evicted = pod(phase="Failed", terminated=(137, "Error"), reason="Evicted")
    evicted.status.message = "Pod ephemeral local storage usage exceeds the total limit of containers 32Mi. "
    outcome = outcome_from_pod(evicted, "", limits_memory_mb=96)
    assert outcome is not None and outcome.status is Status.error
    assert outcome.error == (
        "the node evicted the sandbox: Pod ephemeral local storage usage exceeds the total limit of containers 32Mi. "
    )


def test_an_envelope_is_taken_whole():
    outcome = outcome_from_pod(pod(phase="Succeeded", terminated=(0, "Completed")), ENVELOPE, 128)
    assert outcome is not None
    assert (outcome.exit_code, outcome.stdout, outcome.duration_ms) == (0, "hi\n", 3)


UNSCHEDULED = [client.V1PodCondition(type="PodScheduled", status="False", message="0/1 nodes are available")]
SCHEDULED = [client.V1PodCondition(type="PodScheduled", status="True")]
CREATING = {"phase": "Pending", "waiting": "ContainerCreating", "waiting_message": None, "conditions": SCHEDULED}
MISSING_SECRET = 'secret "exec-1-stdin" not found'


@pytest.mark.parametrize(
    ("case", "the_pod", "waited", "error"),
    [
        ("unschedulable, within the limit", pod(phase="Pending", conditions=UNSCHEDULED), 5, None),
        (
            "unschedulable",
            pod(phase="Pending", conditions=UNSCHEDULED),
            61,
            "the sandbox never started within 60 s: no node could run the sandbox: 0/1 nodes are available",
        ),
        (
            "its container waits",
            pod(**CREATING),
            61,
            "the sandbox never started within 60 s: its container was waiting in ContainerCreating (its image, "
            "its input volume or its network; the pod's events say which)",
        ),
        (
            "its container waits, saying why",
            pod(**{**CREATING, "waiting_message": MISSING_SECRET}),
            61,
            f"the sandbox never started within 60 s: its container was waiting in ContainerCreating: {MISSING_SECRET}",
        ),
        (
            "no pod at all",
            None,
            61,
            "the sandbox never started within 60 s: its Job had no pod yet (the Job's events say why, e.g. a full "
            "ResourceQuota or a refused pod)",
        ),
        ("no pod, within the limit", None, 59, None),
        ("running: its time limit runs instead", pod(conditions=SCHEDULED), 61, None),
        ("finished", pod(phase="Succeeded", terminated=(0, "Completed")), 61, None),
    ],
)
def test_a_sandbox_that_has_not_started_by_the_startup_limit_is_an_error_saying_what_it_waits_on(
    case, the_pod, waited, error
):
    outcome = startup_outcome(the_pod, waited, schedule_timeout_seconds=60)
    if error is None:
        assert outcome is None, case
    else:
        assert outcome is not None and (outcome.status, outcome.error, outcome.exit_code) == (Status.error, error, None)


JOB_DEADLINE = client.V1Job(
    status=client.V1JobStatus(
        conditions=[client.V1JobCondition(type="Failed", status="True", reason="DeadlineExceeded")]
    )
)
# A pod deleted before its container started: the kubelet reports the container as terminated, though it never ran.
NEVER_RAN = pod(phase="Failed", terminated=(137, "ContainerStatusUnknown"))
NEVER_RAN.status.container_statuses[0].state.terminated.started_at = None


@pytest.mark.parametrize(
    ("case", "job", "last_seen", "status", "error"),
    [
        ("deadline, the program ran", JOB_DEADLINE, pod(), Status.timed_out, DEADLINE_EXCEEDED_REASON),
        (
            "deadline, the program ran and ended",
            JOB_DEADLINE,
            pod(phase="Failed", terminated=(137, "Error")),
            Status.timed_out,
            DEADLINE_EXCEEDED_REASON,
        ),
        (
            "deadline, its container still waiting",
            JOB_DEADLINE,
            pod(**{**CREATING, "waiting_message": MISSING_SECRET}),
            Status.error,
            f"the sandbox never started before its Job's deadline: its container was waiting in ContainerCreating: "
            f"{MISSING_SECRET}",
        ),
        (
            "deadline, unschedulable",
            JOB_DEADLINE,
            pod(phase="Pending", conditions=UNSCHEDULED),
            Status.error,
            "the sandbox never started before its Job's deadline: no node could run the sandbox: 0/1 nodes are "
            "available",
        ),
        (
            "deadline, its container never ran",
            JOB_DEADLINE,
            NEVER_RAN,
            Status.error,
            "the sandbox never started before its Job's deadline: its container ended before it ran "
            "(ContainerStatusUnknown)",
        ),
        (
            "deadline, no pod ever seen",
            JOB_DEADLINE,
            None,
            Status.error,
            "the sandbox never started before its Job's deadline: its Job had no pod yet",
        ),
        (
            "deleted",
            client.V1Job(status=client.V1JobStatus()),
            pod(),
            Status.error,
            "the sandbox pod was deleted before it reported a result",
        ),
        ("deleted with its Job", None, None, Status.error, "the sandbox pod was deleted before it reported a result"),
    ],
)
def test_a_vanished_sandbox_is_a_timeout_only_when_its_program_ran_past_the_deadline(
    case, job, last_seen, status, error
):
    outcome = outcome_of_vanished_job(job, last_seen)
    assert outcome.status is status, (case, outcome)
    assert (outcome.error or "").startswith(error), (case, outcome)
    assert outcome.exit_code is None


def test_the_sandbox_storage_bound_leaves_room_for_the_output_the_limits_allow():
    # 16 x 2 MiB of output fills 32 MiB: no room left for artifacts
    assert Settings(
        backend="kubernetes", output_limit_bytes=2 << 20, max_artifact_bytes=0, sandbox_ephemeral_storage_mb=32
    )
    with pytest.raises(ValueError, match="EXECUTIONER_SANDBOX_EPHEMERAL_STORAGE_MB is too small"):
        Settings(backend="kubernetes", output_limit_bytes=4 << 20, sandbox_ephemeral_storage_mb=32)
    assert Settings(backend="local", output_limit_bytes=4 << 20)  # no sandbox pods, no bound to respect


def test_the_sandbox_storage_bound_leaves_room_for_the_artifacts_in_base64():
    # 1 MiB of output takes 16 MiB of log; 12 MiB of artifacts take 16 MiB more in base64
    assert Settings(
        backend="kubernetes", output_limit_bytes=1 << 20, max_artifact_bytes=12 << 20, sandbox_ephemeral_storage_mb=32
    )
    with pytest.raises(ValueError, match="EXECUTIONER_MAX_ARTIFACT_BYTES"):
        Settings(
            backend="kubernetes",
            output_limit_bytes=1 << 20,
            max_artifact_bytes=(12 << 20) + 3,
            sandbox_ephemeral_storage_mb=32,
        )


def test_an_input_file_must_fit_a_secret_on_kubernetes():
    assert Settings(backend="kubernetes", max_input_file_bytes=1 << 20)
    with pytest.raises(ValueError, match="EXECUTIONER_MAX_INPUT_FILE_BYTES exceeds 1048576"):
        Settings(backend="kubernetes", max_input_file_bytes=(1 << 20) + 1)
    assert Settings(backend="local", max_input_file_bytes=4 << 20)
