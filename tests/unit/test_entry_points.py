"""Entry points: what importing them costs, and what the CLI prints and exits with."""

from __future__ import annotations

import subprocess
import sys

import pytest

from executioner.cli import EXIT_STATUS, exit_status, report
from executioner.models import ExecutionPublic, Limits, Status, utcnow


def test_the_worker_app_imports_without_reading_settings():
    # A broken environment must not break an import: settings are read when the worker starts.
    env = {"EXECUTIONER_PORT": "not-a-port", "PATH": "/usr/bin:/bin"}
    code = "import executioner.worker.celery_app, executioner.worker.tasks; print('ok')"
    result = subprocess.run([sys.executable, "-P", "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def document(status: Status, exit_code: int | None = None, **fields) -> ExecutionPublic:
    return ExecutionPublic(
        id="x",
        status=status,
        created_at=utcnow(),
        exit_code=exit_code,
        limits=Limits(timeout_seconds=5, memory_mb=128),
        backend="local",
        **fields,
    )


@pytest.mark.parametrize(
    ("status", "exit_code", "expected"),
    [
        (Status.succeeded, 0, 0),
        (Status.failed, 3, 3),
        (Status.timed_out, None, 124),
        (Status.memory_exceeded, None, 137),
        (Status.cancelled, None, 130),
        (Status.error, None, 125),
        (Status.running, None, 1),
    ],
)
def test_exit_status_mirrors_the_program(status, exit_code, expected):
    assert exit_status(document(status, exit_code)) == expected
    assert set(EXIT_STATUS) <= {s for s in Status if s.terminal}


def test_report_writes_the_streams_and_says_why(capsys):
    code = report(
        document(Status.timed_out, stdout="out", stderr="err", error="too slow", stdout_truncated=True), False
    )
    captured = capsys.readouterr()
    assert code == 124
    assert captured.out == "out"
    assert captured.err.startswith("err")
    assert "stdout was truncated" in captured.err and "timed_out: too slow" in captured.err


def test_report_json_is_the_document(capsys):
    report(document(Status.succeeded, 0, stdout="hi\n"), True)
    assert ExecutionPublic.model_validate_json(capsys.readouterr().out).stdout == "hi\n"
