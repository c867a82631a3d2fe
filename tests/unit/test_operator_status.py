"""An execution as an ExecutionRequest's status: phases, capped output, and Kubernetes' condition rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from executioner.models import Artifact, Execution, Limits, Status
from executioner.operator.status import (
    FINAL_PHASES,
    PHASES,
    REJECTED,
    STATUS_OUTPUT_BYTES,
    capped,
    held_back_status,
    input_file,
    rejected_status,
    set_condition,
    status_of,
    with_live_output,
)

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z"
NS, NAME = "team-a", "plot"


def execution(status: Status, **fields) -> Execution:
    record = Execution.new(code="x", limits=Limits(timeout_seconds=5, memory_mb=128), backend="local")
    return record.model_copy(update={"status": status, **fields})


@pytest.mark.parametrize(("status", "phase"), list(PHASES.items()))
def test_every_status_has_a_phase_and_a_complete_condition(status, phase):
    document = status_of(execution(status), T0, namespace=NS, name=NAME, generation=1)
    assert document["phase"] == phase
    (condition,) = document["conditions"]
    assert condition["type"] == "Complete"
    assert condition["status"] == ("True" if status.terminal else "False")
    assert (phase in FINAL_PHASES) is status.terminal


def test_condition_and_status_carry_the_observed_generation():
    document = status_of(execution(Status.running), T0, namespace=NS, name=NAME, generation=3)
    assert document["observedGeneration"] == 3
    assert document["conditions"][0]["observedGeneration"] == 3


def test_transition_time_moves_only_when_the_condition_status_changes():
    queued = status_of(execution(Status.queued), T0, namespace=NS, name=NAME, generation=1)
    running = status_of(
        execution(Status.running), T1, namespace=NS, name=NAME, generation=1, conditions=queued["conditions"]
    )
    # Pending -> Running: Complete stays "False", so its transition time stays.
    assert running["conditions"][0]["lastTransitionTime"] == T0
    assert running["conditions"][0]["reason"] == "Running"
    done = status_of(
        execution(Status.succeeded), T1, namespace=NS, name=NAME, generation=1, conditions=running["conditions"]
    )
    assert done["conditions"][0]["lastTransitionTime"] == T1


def test_set_condition_keeps_other_types():
    others = [{"type": "Ready", "status": "True", "lastTransitionTime": T0}]
    result = set_condition(others, {"type": "Complete", "status": "False"}, T1)
    assert [c["type"] for c in result] == ["Ready", "Complete"]
    assert result[1]["lastTransitionTime"] == T1


@pytest.mark.parametrize(
    ("text", "truncated"),
    [
        ("", False),
        ("a" * STATUS_OUTPUT_BYTES, False),
        ("a" * (STATUS_OUTPUT_BYTES + 1), True),
        ("é" * STATUS_OUTPUT_BYTES, True),
    ],
)
def test_output_is_capped_in_bytes_on_a_character_boundary(text, truncated):
    kept, was_capped = capped(text)
    assert was_capped is truncated
    assert len(kept.encode()) <= STATUS_OUTPUT_BYTES
    assert text.startswith(kept)


def test_finished_execution_fields():
    started = datetime(2026, 1, 1, tzinfo=UTC)
    record = execution(
        Status.failed,
        exit_code=2,
        stdout="o",
        stderr="e",
        error=None,
        started_at=started,
        finished_at=started,
        duration_ms=12,
        stdout_truncated=True,
    )
    document = status_of(record, T0, namespace=NS, name=NAME)
    assert document["exitCode"] == 2 and document["stdout"] == "o" and document["stderr"] == "e"
    assert document["stdoutTruncated"] is True and document["stderrTruncated"] is False
    assert document["startedAt"] == "2026-01-01T00:00:00Z" and document["durationMs"] == 12
    assert "observedGeneration" not in document


def test_a_rejected_request_names_the_spec_fields_and_is_final():
    errors = [
        {"loc": ["limits", "timeout_seconds"], "msg": "Input should be less than or equal to 10", "type": "x"},
        {"loc": ["code"], "msg": "code is larger than 100 bytes", "type": "too_large"},
    ]
    status = rejected_status(errors, T0, generation=1, conditions=[])
    assert status["phase"] == REJECTED and REJECTED in FINAL_PHASES
    assert status["error"] == (
        "spec.limits.timeoutSeconds: Input should be less than or equal to 10; spec.code: code is larger than 100 bytes"
    )
    [complete] = status["conditions"]
    assert (complete["type"], complete["status"], complete["reason"]) == ("Complete", "True", REJECTED)
    assert complete["observedGeneration"] == status["observedGeneration"] == 1


def test_artifacts_are_listed_with_where_the_api_serves_them_to_kubernetes_tokens():
    record = execution(
        Status.succeeded,
        artifacts=[Artifact(path="plots/a b.png", size=2048, content_type="image/png")],
        artifacts_truncated=True,
    )
    document = status_of(record, T0, namespace=NS, name=NAME)
    assert document["artifacts"] == [
        {
            "path": "plots/a b.png",
            "size": 2048,
            "contentType": "image/png",
            "apiPath": "/v1/executionrequests/team-a/plot/artifacts/plots/a%20b.png",
        }
    ]
    assert document["artifactsTruncated"] is True
    assert "artifacts" not in status_of(execution(Status.succeeded), T0, namespace=NS, name=NAME)


def test_file_errors_name_the_spec_fields():
    assert input_file({"path": "a.csv", "contentBase64": "eA=="}) == {"path": "a.csv", "content_base64": "eA=="}
    errors = [{"loc": ["files", 1, "content_base64"], "msg": "file 'b.csv': larger than 10 bytes", "type": "too_large"}]
    status = rejected_status(errors, T0, generation=None, conditions=None)
    assert status["error"] == "spec.files.1.contentBase64: file 'b.csv': larger than 10 bytes"


def test_a_held_back_request_stays_pending_with_the_reason():
    status = held_back_status(
        "RateLimit", "rate limit of 1 executions per minute exceeded", T0, generation=2, conditions=[]
    )
    assert status["phase"] == "Pending"
    [admitted] = status["conditions"]
    assert (admitted["type"], admitted["status"], admitted["reason"]) == ("Admitted", "False", "RateLimit")
    assert "rate limit" in admitted["message"]


def test_a_running_status_carries_the_output_so_far_capped():
    running = status_of(execution(Status.running), T0, namespace=NS, name=NAME)
    live = with_live_output(running, {"stdout": "x" * (STATUS_OUTPUT_BYTES + 5), "stderr": "warn\n"})
    assert (len(live["stdout"]), live["stdoutTruncated"]) == (STATUS_OUTPUT_BYTES, True)
    assert (live["stderr"], live["stderrTruncated"]) == ("warn\n", False)
    assert live["phase"] == "Running" and running["stdout"] == ""  # the document itself is left as it was
