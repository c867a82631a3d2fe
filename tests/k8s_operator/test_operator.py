"""`kubectl apply` an ExecutionRequest and read the result, on the real cluster with the real operator and worker."""

from __future__ import annotations

import base64
import json
import textwrap

import pytest
import yaml

from executioner.kube import EXECUTION_LABEL
from executioner.models import Execution, Limits, Status
from executioner.settings import Settings
from executioner.store import ExecutionStore
from executioner.worker.backends.kubernetes import build_input_secrets, build_sandbox_job
from helpers import kube
from helpers.operator import operator_env, operator_running
from helpers.programs import new_marker, sleeper, wait_until
from helpers.stack import kill_process_tree, start_redis, start_worker, stop

pytestmark = pytest.mark.cluster


def request(name: str, code: str, stdin: str = "", **limits) -> str:
    spec = {"code": code, "stdin": stdin}
    if limits:
        spec["limits"] = limits
    return yaml.safe_dump(
        {"apiVersion": "executioner.dev/v1alpha1", "kind": "ExecutionRequest", "metadata": {"name": name}, "spec": spec}
    )


def apply(kubeconfig, namespace, manifest, check=True):
    return kube.kubectl(kubeconfig, "apply", "-n", namespace, "-f", "-", input=manifest, check=check)


def wait_phase(kubeconfig, namespace, name, phase, timeout=90) -> dict:
    kube.kubectl(
        kubeconfig,
        "wait",
        "-n",
        namespace,
        f"exr/{name}",
        f"--for=jsonpath={{.status.phase}}={phase}",
        f"--timeout={timeout}s",
    )
    return json.loads(kube.kubectl(kubeconfig, "get", "-n", namespace, f"exr/{name}", "-o", "json").stdout)


def test_apply_with_stdin_ends_succeeded_with_the_output(operator, kubeconfig, user_namespace):
    code = "import sys\nname = sys.stdin.read().strip()\nprint(f'hello, {name}')"
    apply(kubeconfig, user_namespace, request("hello", code, stdin="kubernetes\n"))
    resource = wait_phase(kubeconfig, user_namespace, "hello", "Succeeded")
    status = resource["status"]
    assert status["stdout"] == "hello, kubernetes\n"
    assert status["exitCode"] == 0
    assert len(status["executionId"]) == 32
    assert status["startedAt"] and status["finishedAt"] and status["durationMs"] >= 0
    complete = next(c for c in status["conditions"] if c["type"] == "Complete")
    assert complete["status"] == "True" and complete["reason"] == "Succeeded"
    table = kube.kubectl(kubeconfig, "get", "exr", "-n", user_namespace).stdout
    assert table.split("\n")[0].split()[:4] == ["NAME", "PHASE", "EXIT", "DURATION"]
    assert table.split("\n")[1].split()[:3] == ["hello", "Succeeded", "0"]


@pytest.mark.parametrize(
    ("code", "limits", "phase", "exit_code"),
    [
        ("import sys\nprint('bad')\nsys.exit(3)", {}, "Failed", 3),
        ("import time\ntime.sleep(30)", {"timeoutSeconds": 1}, "TimedOut", None),
        ("x = []\nwhile True:\n    x.append(bytearray(8 << 20))", {"memoryMb": 64}, "MemoryExceeded", None),
    ],
    ids=["failure", "timeout", "memory"],
)
def test_outcomes_map_to_phases(operator, kubeconfig, user_namespace, code, limits, phase, exit_code):
    apply(kubeconfig, user_namespace, request("outcome", code, **limits))
    status = wait_phase(kubeconfig, user_namespace, "outcome", phase)["status"]
    if exit_code is not None:
        assert status["exitCode"] == exit_code
    else:
        assert status["error"]


def test_deleting_the_resource_cancels_the_execution(operator, kubeconfig, user_namespace, kubernetes_stack):
    apply(kubeconfig, user_namespace, request("long", sleeper(new_marker("exr-cancel")), timeoutSeconds=60))
    status = wait_phase(kubeconfig, user_namespace, "long", "Running")["status"]
    execution_id = status["executionId"]
    kube.kubectl(kubeconfig, "delete", "-n", user_namespace, "exr/long", "--timeout=60s")
    store = ExecutionStore.from_url(kubernetes_stack.env["EXECUTIONER_REDIS_URL"], 3600)
    assert store.get(execution_id).status is Status.cancelled

    def sandbox_gone():
        return not kube.execution_objects(kubeconfig, kubernetes_stack.namespace, execution_id, "jobs,pods")

    assert wait_until(sandbox_gone, 30)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"stdin": "x"}, "spec.code: Required value"),
        ({"code": ""}, "spec.code"),
        ({"code": "#" * 65537}, "spec.code: Too long"),
        ({"code": "print(1)", "limits": {"timeoutSeconds": 61}}, "spec.limits.timeoutSeconds"),
        ({"code": "print(1)", "limits": {"timeoutSeconds": 0}}, "spec.limits.timeoutSeconds"),
        ({"code": "print(1)", "limits": {"memoryMb": 8}}, "spec.limits.memoryMb"),
        ({"code": "print(1)", "limits": {"memoryMb": "lots"}}, "spec.limits.memoryMb"),
        ({"code": "print(1)", "language": "ruby"}, "unknown field"),
        ({"code": "print(1)", "runtime": "python-gpu"}, 'spec.runtime: Unsupported value: "python-gpu"'),
        ({"code": "print(1)", "files": [{"path": "a.csv"}]}, "spec.files[0].contentBase64: Required value"),
    ],
    ids=[
        "no-code",
        "empty-code",
        "code-too-long",
        "timeout-too-long",
        "timeout-zero",
        "memory-too-small",
        "memory-not-a-number",
        "unknown-field",
        "unknown-runtime",
        "file-without-content",
    ],
)
def test_invalid_specs_are_rejected_by_the_api_server(crd, kubeconfig, user_namespace, spec, message):
    manifest = yaml.safe_dump(
        {
            "apiVersion": "executioner.dev/v1alpha1",
            "kind": "ExecutionRequest",
            "metadata": {"name": "bad"},
            "spec": spec,
        }
    )
    result = apply(kubeconfig, user_namespace, manifest, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_spec_is_immutable(crd, kubeconfig, user_namespace):
    apply(kubeconfig, user_namespace, request("fixed", "print(1)"))
    result = apply(kubeconfig, user_namespace, request("fixed", "print(2)"), check=False)
    assert result.returncode != 0
    assert "spec is immutable" in result.stderr


def test_a_worker_killed_mid_execution_is_recovered_by_the_operator(
    crd, kubeconfig, user_namespace, kubernetes_stack, operator_kubeconfig, tmp_path
):
    """The worker dies while the sandbox pod runs; the pod finishes anyway and the operator records its result."""
    redis_url, redis_process = start_redis(tmp_path)
    env = {**kubernetes_stack.env, "EXECUTIONER_REDIS_URL": redis_url, "EXECUTIONER_LEASE_SECONDS": "2"}
    worker = start_worker(env, tmp_path / "worker.log", name="doomed")
    try:
        with operator_running(operator_env(kubernetes_stack, operator_kubeconfig, EXECUTIONER_REDIS_URL=redis_url)):
            code = textwrap.dedent(
                """
                import time
                time.sleep(6)
                print("finished without its worker")
                """
            )
            apply(kubeconfig, user_namespace, request("orphaned", code, timeoutSeconds=30))
            execution_id = wait_phase(kubeconfig, user_namespace, "orphaned", "Running")["status"]["executionId"]

            def pod_running():
                return kube.execution_pod_phase(kubeconfig, kubernetes_stack.namespace, execution_id) == "Running"

            assert wait_until(pod_running, 60)
            kill_process_tree(worker)
            status = wait_phase(kubeconfig, user_namespace, "orphaned", "Succeeded", timeout=90)["status"]
            assert status["stdout"] == "finished without its worker\n"
            assert wait_until(
                lambda: (
                    kube.kubectl(
                        kubeconfig,
                        "get",
                        "jobs",
                        "-n",
                        kubernetes_stack.namespace,
                        "-l",
                        f"{EXECUTION_LABEL}={execution_id}",
                        "-o",
                        "name",
                    ).stdout
                    == ""
                ),
                30,
            )
    finally:
        stop(worker)
        stop(redis_process)


def test_the_sweep_removes_planted_leftovers(operator, kubeconfig, kubernetes_stack):
    """A Job of an execution nobody knows, a pod without its Job, and a Secret without its Job all go."""
    namespace = kubernetes_stack.namespace
    ghost = Execution.new(
        code="import time\ntime.sleep(30)",
        limits=Limits(timeout_seconds=30, memory_mb=64),
        backend="kubernetes",
        status=Status.running,
    )
    settings = Settings(sandbox_image=kubernetes_stack.env["EXECUTIONER_SANDBOX_IMAGE"])
    job = build_sandbox_job(ghost, settings)
    planted = []  # each as kubectl names it: the sweep may take one before a listing could see it

    def plant(manifest: dict) -> None:
        created = kube.kubectl(
            kubeconfig, "create", "-n", namespace, "-o", "name", "-f", "-", input=yaml.safe_dump(manifest)
        )
        planted.append(created.stdout.strip())

    plant(job)
    orphan_id = new_marker("orphan").replace("orphan-", "")
    orphan = build_sandbox_job(ghost.model_copy(update={"id": orphan_id}), settings)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"stray-{orphan_id[:8]}", "labels": orphan["spec"]["template"]["metadata"]["labels"]},
        "spec": {
            **orphan["spec"]["template"]["spec"],
            "volumes": [v for v in orphan["spec"]["template"]["spec"]["volumes"] if v["name"] == "tmp"],
        },
    }
    pod["spec"]["containers"] = [
        {**pod["spec"]["containers"][0], "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}
    ]
    plant(pod)
    secret = build_input_secrets(
        ghost.model_copy(update={"id": orphan_id}), {"metadata": {"name": f"exec-{orphan_id}", "uid": "0"}}
    )[0]
    secret["metadata"].pop("ownerReferences")
    plant(secret)
    assert len(planted) == 3 and all(planted), planted

    def leftovers():
        names = kube.kubectl(kubeconfig, "get", "-n", namespace, *planted, "--ignore-not-found", "-o", "name")
        return names.stdout.split()

    assert wait_until(lambda: leftovers() == [], 60), leftovers()


def test_a_request_beyond_the_deployments_limits_is_rejected_with_the_field_named(
    crd, kubeconfig, user_namespace, kubernetes_stack, operator_kubeconfig
):
    """The CRD allows 60 s (manifests/crd.yaml); this deployment allows 10: the operator's admission decides."""
    env = operator_env(kubernetes_stack, operator_kubeconfig, EXECUTIONER_MAX_TIMEOUT_SECONDS="10")
    with operator_running(env):
        apply(kubeconfig, user_namespace, request("greedy", "print(1)", timeoutSeconds=30))
        status = wait_phase(kubeconfig, user_namespace, "greedy", "Rejected")["status"]
        assert status["error"] == "spec.limits.timeoutSeconds: Input should be less than or equal to 10"
        assert "executionId" not in status
        complete = next(c for c in status["conditions"] if c["type"] == "Complete")
        assert (complete["status"], complete["reason"]) == ("True", "Rejected")
        # Within the bounds, the same deployment runs it.
        apply(kubeconfig, user_namespace, request("modest", "print('within')", timeoutSeconds=10))
        assert wait_phase(kubeconfig, user_namespace, "modest", "Succeeded")["status"]["stdout"] == "within\n"


def test_a_namespace_has_a_keys_rate_limit(crd, kubeconfig, user_namespace, kubernetes_stack, operator_kubeconfig):
    env = operator_env(
        kubernetes_stack,
        operator_kubeconfig,
        EXECUTIONER_RATE_LIMIT_PER_MINUTE="12",  # one every 5 s
        EXECUTIONER_RATE_LIMIT_BURST="1",
    )
    with operator_running(env) as runner:
        manifests = [request(f"burst-{n}", f"print({n})") for n in range(2)]
        apply(kubeconfig, user_namespace, "---\n".join(manifests))
        statuses = [wait_phase(kubeconfig, user_namespace, f"burst-{n}", "Succeeded")["status"] for n in range(2)]
    assert [s["stdout"] for s in statuses] == ["0\n", "1\n"]
    for status in statuses:
        admitted = next(c for c in status["conditions"] if c["type"] == "Admitted")
        assert admitted["status"] == "True"
    assert "not admitted yet: rate limit of 12 executions per minute exceeded" in runner.output


def test_the_operator_acts_only_on_its_own_execution(
    crd, kubeconfig, user_namespace, kubernetes_stack, operator_kubeconfig
):
    """Whoever may patch one resource's status cannot read or cancel another's execution through it."""
    env = operator_env(kubernetes_stack, operator_kubeconfig)
    with operator_running(env):
        victim_code = sleeper(new_marker("victim"))
        apply(kubeconfig, user_namespace, request("victim", victim_code, timeoutSeconds=60))
        victim_id = wait_phase(kubeconfig, user_namespace, "victim", "Running")["status"]["executionId"]
        apply(kubeconfig, user_namespace, request("thief", "print('mine')"))
        wait_phase(kubeconfig, user_namespace, "thief", "Succeeded")
    # While no operator runs, point the finished thief at the victim's execution, as a status patch can; the next
    # operator follows every unfinished resource from its status.
    kube.kubectl(
        kubeconfig,
        "patch",
        "-n",
        user_namespace,
        "exr/thief",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"executionId": victim_id, "phase": "Running", "stdout": ""}}),
    )
    store = ExecutionStore.from_url(kubernetes_stack.env["EXECUTIONER_REDIS_URL"], 3600)
    with operator_running(env):
        status = wait_phase(kubeconfig, user_namespace, "thief", "Error")["status"]
        assert status["error"] == "status.executionId names an execution this ExecutionRequest did not submit"
        assert status["stdout"] == ""  # nothing of the victim's output was copied
        kube.kubectl(kubeconfig, "delete", "-n", user_namespace, "exr/thief", "--timeout=60s")
        assert store.get(victim_id).status is Status.running  # not cancelled by the thief's deletion
        kube.kubectl(kubeconfig, "delete", "-n", user_namespace, "exr/victim", "--timeout=60s")
        assert store.get(victim_id).status is Status.cancelled


def test_a_running_requests_status_shows_its_output_live(operator, kubeconfig, user_namespace):
    """`kubectl get exr -w` watches the output grow: Kubernetes RBAC decides who may read it, no API key needed."""
    code = "import time\nprint('first', flush=True)\ntime.sleep(6)\nprint('second', flush=True)"
    apply(kubeconfig, user_namespace, request("live", code, timeoutSeconds=30))

    def status():
        return json.loads(kube.kubectl(kubeconfig, "get", "-n", user_namespace, "exr/live", "-o", "json").stdout).get(
            "status", {}
        )

    assert wait_until(lambda: status().get("stdout") == "first\n", 60), status()
    assert status()["phase"] == "Running"  # seen before the program ended
    final = wait_phase(kubeconfig, user_namespace, "live", "Succeeded")["status"]
    assert final["stdout"] == "first\nsecond\n"


def test_a_file_path_outside_the_working_directory_is_rejected_naming_the_file(operator, kubeconfig, user_namespace):
    files = [{"path": "../etc/passwd", "contentBase64": base64.b64encode(b"x").decode()}]
    manifest = yaml.safe_dump(
        {
            "apiVersion": "executioner.dev/v1alpha1",
            "kind": "ExecutionRequest",
            "metadata": {"name": "escape"},
            "spec": {"code": "print(1)", "files": files},
        }
    )
    apply(kubeconfig, user_namespace, manifest)
    status = wait_phase(kubeconfig, user_namespace, "escape", "Rejected")["status"]
    assert status["error"].startswith("spec.files.0.path: file '../etc/passwd': the path is not normalised"), status


PLOT_CSV = """
import pandas, matplotlib.pyplot as plt
frame = pandas.read_csv("data/points.csv")
print(int(frame["y"].sum()))
frame.plot(x="x", y="y").get_figure().savefig("outputs/plot.png")
"""


def test_a_python_data_request_reads_its_csv_and_lists_its_plot(operator, kubeconfig, user_namespace, kubernetes_stack):
    csv = base64.b64encode(b"x,y\n1,2\n2,4\n3,8\n").decode()
    spec = {"code": PLOT_CSV, "runtime": "python-data", "files": [{"path": "data/points.csv", "contentBase64": csv}]}
    manifest = yaml.safe_dump(
        {
            "apiVersion": "executioner.dev/v1alpha1",
            "kind": "ExecutionRequest",
            "metadata": {"name": "plot"},
            "spec": spec,
        }
    )
    apply(kubeconfig, user_namespace, manifest)
    status = wait_phase(kubeconfig, user_namespace, "plot", "Succeeded", timeout=180)["status"]
    assert status["stdout"] == "14\n"
    [artifact] = status["artifacts"]
    execution_id = status["executionId"]
    assert artifact["path"] == "plot.png" and artifact["contentType"] == "image/png" and artifact["size"] > 1000
    assert artifact["apiPath"] == f"/v1/executionrequests/{user_namespace}/plot/artifacts/plot.png"
    assert status["artifactsTruncated"] is False
    store = ExecutionStore.from_url(kubernetes_stack.env["EXECUTIONER_REDIS_URL"], 3600)
    execution = store.get(execution_id)
    # the runtime's default memory, not the deployment's: the CRD leaves memoryMb unset
    assert (execution.runtime, execution.limits.memory_mb) == ("python-data", 384)
    table = kube.kubectl(kubeconfig, "get", "exr", "plot", "-n", user_namespace).stdout
    assert table.split("\n")[0].split()[4] == "RUNTIME" and table.split("\n")[1].split()[4] == "python-data"
