"""How an execution record reads as an ExecutionRequest's status (pure functions: table-tested)."""

from __future__ import annotations

from typing import Any

from executioner.execution_requests import artifact_api_path
from executioner.models import Execution, Status

PHASES = {
    Status.queued: "Pending",
    Status.running: "Running",
    Status.succeeded: "Succeeded",
    Status.failed: "Failed",
    Status.timed_out: "TimedOut",
    Status.memory_exceeded: "MemoryExceeded",
    Status.cancelled: "Cancelled",
    Status.error: "Error",
}
# An ExecutionRequest the deployment refused outright (its spec breaks the deployment's bounds): no execution exists.
REJECTED = "Rejected"
FINAL_PHASES = frozenset({*(PHASES[s] for s in Status if s.terminal), REJECTED})
# Where the operator says whether a request got in: False while a rate limit or cap holds it back.
ADMITTED = "Admitted"
# Submission field names as the ExecutionRequest spells them.
SPEC_FIELDS = {
    "code": "code",
    "stdin": "stdin",
    "limits": "limits",
    "timeout_seconds": "timeoutSeconds",
    "memory_mb": "memoryMb",
    "runtime": "runtime",
    "files": "files",
    "content_base64": "contentBase64",
}
# Output kept in the object: two streams of 16 KiB stay far below etcd's 1.5 MiB object limit.
STATUS_OUTPUT_BYTES = 16 * 1024
COMPLETE = "Complete"


def input_file(file: dict[str, Any]) -> dict[str, Any]:
    """A spec.files entry as the Submitter takes it (which checks both fields: a missing one is named in status)."""
    return {"path": file.get("path"), "content_base64": file.get("contentBase64")}


def capped(text: str) -> tuple[str, bool]:
    data = text.encode()
    if len(data) <= STATUS_OUTPUT_BYTES:
        return text, False
    return data[:STATUS_OUTPUT_BYTES].decode("utf-8", errors="ignore"), True


def set_condition(conditions: list[dict[str, Any]], new: dict[str, Any], now: str) -> list[dict[str, Any]]:
    """Kubernetes' rule (meta.SetStatusCondition): replace the condition of the same type, keeping its
    lastTransitionTime unless its status changed."""
    previous = next((c for c in conditions if c.get("type") == new["type"]), None)
    unchanged = previous is not None and previous.get("status") == new["status"] and previous.get("lastTransitionTime")
    condition = {**new, "lastTransitionTime": previous["lastTransitionTime"] if unchanged and previous else now}
    return [c for c in conditions if c.get("type") != new["type"]] + [condition]


def to_timestamp(value: Any) -> str:
    return str(value.isoformat()).replace("+00:00", "Z")


def status_of(
    execution: Execution,
    now: str,
    *,
    namespace: str | None,
    name: str,
    generation: int | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The status document (a merge patch) for the current state of the execution of the resource `name` in
    `namespace`, given its generation and its current conditions."""
    phase = PHASES[execution.status]
    stdout, stdout_capped = capped(execution.stdout)
    stderr, stderr_capped = capped(execution.stderr)
    complete: dict[str, Any] = {
        "type": COMPLETE,
        "status": "True" if execution.status.terminal else "False",
        "reason": phase,
        "message": execution.error or phase,
    }
    if generation is not None:
        complete["observedGeneration"] = generation
    status: dict[str, Any] = {
        "phase": phase,
        "executionId": execution.id,
        "exitCode": execution.exit_code,
        "stdout": stdout,
        "stderr": stderr,
        "stdoutTruncated": execution.stdout_truncated or stdout_capped,
        "stderrTruncated": execution.stderr_truncated or stderr_capped,
        "error": execution.error or "",
        "conditions": set_condition(conditions or [], complete, now),
    }
    if execution.artifacts or execution.artifacts_truncated:
        # the listing only: the content stays in the store, served by the API at each entry's apiPath to a Kubernetes
        # token allowed to get this resource
        status["artifacts"] = [
            {
                "path": artifact.path,
                "size": artifact.size,
                "contentType": artifact.content_type,
                "apiPath": artifact_api_path(namespace, name, artifact.path),
            }
            for artifact in execution.artifacts
        ]
        status["artifactsTruncated"] = execution.artifacts_truncated
    if generation is not None:
        status["observedGeneration"] = generation
    if execution.started_at:
        status["startedAt"] = to_timestamp(execution.started_at)
    if execution.finished_at:
        status["finishedAt"] = to_timestamp(execution.finished_at)
    if execution.duration_ms is not None:
        status["durationMs"] = execution.duration_ms
    return status


def spec_path(loc: list[Any]) -> str:
    """A submission error's location as the resource's field path: ["limits", "memory_mb"] -> spec.limits.memoryMb."""
    return ".".join(["spec", *(SPEC_FIELDS.get(str(part), str(part)) for part in loc)])


def rejected_status(
    errors: list[dict[str, Any]], now: str, *, generation: int | None, conditions: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """The final status of a request the deployment refuses: which fields break which bound."""
    message = "; ".join(f"{spec_path(e['loc'])}: {e['msg']}" for e in errors)
    complete: dict[str, Any] = {"type": COMPLETE, "status": "True", "reason": REJECTED, "message": message}
    status: dict[str, Any] = {"phase": REJECTED, "error": message}
    if generation is not None:
        complete["observedGeneration"] = status["observedGeneration"] = generation
    status["conditions"] = set_condition(conditions or [], complete, now)
    return status


def held_back_status(
    reason: str, message: str, now: str, *, generation: int | None, conditions: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """A request that admission holds back for now (rate limit, the namespace's cap, a full queue or store)."""
    admitted: dict[str, Any] = {"type": ADMITTED, "status": "False", "reason": reason, "message": message}
    status: dict[str, Any] = {"phase": PHASES[Status.queued]}
    if generation is not None:
        admitted["observedGeneration"] = status["observedGeneration"] = generation
    status["conditions"] = set_condition(conditions or [], admitted, now)
    return status


def with_live_output(document: dict[str, Any], output: dict[str, str]) -> dict[str, Any]:
    """A running execution's status with the output it has printed so far (capped like the final one)."""
    live = dict(document)
    for stream in ("stdout", "stderr"):
        live[stream], live[f"{stream}Truncated"] = capped(output[stream])
    return live
