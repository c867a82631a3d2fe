"""How an execution record reads as an ExecutionRequest's status."""

from __future__ import annotations

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
FINAL_PHASES = frozenset(PHASES[s] for s in Status if s.terminal)
# Output kept in the object: two streams of 16 KiB stay far below etcd's 1.5 MiB object limit.
STATUS_OUTPUT_BYTES = 16 * 1024


def capped(text: str) -> tuple[str, bool]:
    data = text.encode()
    if len(data) <= STATUS_OUTPUT_BYTES:
        return text, False
    return data[:STATUS_OUTPUT_BYTES].decode("utf-8", errors="ignore"), True


def status_of(execution: Execution, now: str) -> dict:
    """The status document (a merge patch) for the current state of the execution."""
    phase = PHASES[execution.status]
    stdout, stdout_capped = capped(execution.stdout)
    stderr, stderr_capped = capped(execution.stderr)
    status = {
        "phase": phase,
        "executionId": execution.id,
        "exitCode": execution.exit_code,
        "stdout": stdout,
        "stderr": stderr,
        "stdoutTruncated": execution.stdout_truncated or stdout_capped,
        "stderrTruncated": execution.stderr_truncated or stderr_capped,
        "error": execution.error or "",
        "conditions": [
            {
                "type": "Complete",
                "status": "True" if execution.status.terminal else "False",
                "reason": phase,
                "message": execution.error or phase,
                "lastTransitionTime": now,
            }
        ],
    }
    if execution.started_at:
        status["startedAt"] = execution.started_at.isoformat().replace("+00:00", "Z")
    if execution.finished_at:
        status["finishedAt"] = execution.finished_at.isoformat().replace("+00:00", "Z")
    if execution.duration_ms is not None:
        status["durationMs"] = execution.duration_ms
    return status
