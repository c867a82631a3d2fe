"""Admission arithmetic, settings validation and the deadlines derived from them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from executioner.admission import caps_for, memory_refusal, rate_refusal, refusal_for_cap
from executioner.models import Limits, Outcome, Status, execution_create_model
from executioner.queue import celery_config
from executioner.settings import Settings
from executioner.store import CapReached, Caps
from executioner.submission import InvalidSubmission, Submitter, TooLarge


@pytest.mark.parametrize(
    ("cap", "status_code", "says"),
    [("queue_full", 503, "queue is full"), ("active_cap", 429, "queued or running"), ("byte_budget", 429, "budget")],
)
def test_each_cap_has_its_answer(cap, status_code, says):
    refusal = refusal_for_cap(Settings(), CapReached(cap, 7))
    assert (refusal.status_code, refusal.reason) == (status_code, cap)
    assert says in refusal.detail and refusal.retry_after >= 1


def test_caps_follow_the_settings():
    caps = caps_for(Settings(max_queued=3, max_active_per_key=2, max_stored_bytes_per_key=10))
    assert caps == Caps(max_queued=3, max_active_for_owner=2, byte_budget_for_owner=10)


@pytest.mark.parametrize(
    ("used", "maxmemory", "store_max", "refused"),
    [
        (10, 100, 0, False),
        (79, 100, 0, False),
        (80, 100, 0, True),  # the high-water mark is 80 % by default
        (99, 0, 0, False),  # Redis unbounded and no configured bound: nothing to compare with
        (90, 0, 100, True),  # the configured bound stands in for maxmemory
        (90, 200, 100, False),  # Redis's own maxmemory wins
    ],
)
def test_the_store_refuses_at_its_high_water_mark(used, maxmemory, store_max, refused):
    refusal = memory_refusal(Settings(store_max_bytes=store_max), used, maxmemory)
    assert (refusal is not None) is refused
    if refusal:
        assert refusal.status_code == 503 and refusal.retry_after > 0


@pytest.mark.parametrize(("wait", "retry_after"), [(0.0, 1), (0.2, 1), (1.0, 1), (1.01, 2), (7.5, 8)])
def test_rate_refusal_rounds_the_wait_up(wait, retry_after):
    refusal = rate_refusal(Settings(rate_limit_per_minute=60), wait)
    assert (refusal.status_code, refusal.retry_after) == (429, retry_after)
    assert "60 executions per minute" in refusal.detail


def test_deadlines_are_derived_once():
    settings = Settings(grace_seconds=4, schedule_timeout_seconds=30, max_timeout_seconds=60)
    limits = Limits(timeout_seconds=5, memory_mb=128)
    assert settings.sandbox_deadline(limits) == 9
    assert settings.worker_deadline(limits) == 39
    assert settings.longest_task_seconds == 94
    config = celery_config(settings)
    # A message is redelivered only long after the longest execution could have ended.
    assert config["broker_transport_options"]["visibility_timeout"] > 2 * settings.longest_task_seconds
    assert config["task_time_limit"] > settings.longest_task_seconds
    assert config["accept_content"] == ["json"] and config["task_acks_late"] is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EXECUTIONER_DEFAULT_MEMORY_MB": "1024"}, "between the min and max"),
        ({"EXECUTIONER_DEFAULT_TIMEOUT_SECONDS": "90"}, "exceeds"),
        ({"EXECUTIONER_BACKEND": "docker"}, "backend"),
        ({"EXECUTIONER_PORT": "0"}, "port"),
    ],
)
def test_settings_refuse_nonsense(monkeypatch, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_lists_come_comma_separated(monkeypatch):
    monkeypatch.setenv("EXECUTIONER_API_KEYS", " a, b ,,c")
    assert Settings().api_keys == ["a", "b", "c"]


def test_the_request_schema_carries_the_deployment_bounds():
    model = execution_create_model(Settings(max_timeout_seconds=10, max_memory_mb=256, default_timeout_seconds=5))
    assert model.model_validate({"code": "x"}).limits.timeout_seconds == 5
    for limits in ({"timeout_seconds": 11}, {"memory_mb": 257}, {"memory_mb": 8}, {"timeout_seconds": 0}, {"cpu": 1}):
        with pytest.raises(ValidationError):
            model.model_validate({"code": "x", "limits": limits})
    with pytest.raises(ValidationError):
        model.model_validate({"code": ""})


def test_named_outcomes():
    assert Outcome.cancelled() == Outcome(status=Status.cancelled, error="cancelled by request")
    assert Outcome.failure(Status.error, "why").result_fields()["error"] == "why"
    assert "status" not in Outcome.cancelled().result_fields()


@pytest.mark.parametrize(
    ("code", "stdin", "limits", "error", "loc"),
    [
        ("print(1)", "", {"timeout_seconds": 11}, InvalidSubmission, ["limits", "timeout_seconds"]),
        ("print(1)", "", {"memory_mb": 16}, InvalidSubmission, ["limits", "memory_mb"]),
        ("", "", {}, InvalidSubmission, ["code"]),
        ("print(1)", "", {"network": True}, InvalidSubmission, ["limits", "network"]),
        ("s = '" + "é" * 60 + "'", "", {}, TooLarge, ["code"]),  # 60 characters, 120 bytes
        ("print(1)", "ü" * 30, {}, TooLarge, ["stdin"]),
    ],
    ids=["timeout", "memory", "empty-code", "unknown-limit", "code-bytes", "stdin-bytes"],
)
def test_submission_checks_the_deployments_bounds_in_bytes(code, stdin, limits, error, loc):
    settings = Settings(max_timeout_seconds=10, max_code_bytes=100, max_stdin_bytes=50)
    submitter = Submitter(store=None, queue=None, settings=settings, admission=None)  # validate() touches neither
    with pytest.raises(error) as raised:
        submitter.validate(code, stdin, limits)
    assert raised.value.errors[0]["loc"] == loc


def test_submission_fills_in_the_deployments_defaults():
    submitter = Submitter(store=None, queue=None, settings=Settings(default_timeout_seconds=3), admission=None)
    request, size = submitter.validate("print('é')", "in", {})
    assert (request.limits.timeout_seconds, request.limits.memory_mb, size) == (3, 128, 13)


def test_cap_refusals_name_their_owner():
    refusal = refusal_for_cap(Settings(), CapReached("active_cap", 100), "namespace team-a")
    assert refusal.detail.startswith("namespace team-a already has")
