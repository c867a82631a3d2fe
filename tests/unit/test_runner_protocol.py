"""The system's side of the runner contract: the runner's arguments and the envelope it reports."""

from __future__ import annotations

import json

import pytest

from executioner.models import Execution, Limits, Status
from executioner.runner_protocol import CODE_PATH, STDIN_PATH, EnvelopeError, parse_envelope, runner_args
from executioner.settings import Settings


def envelope(**fields) -> str:
    return json.dumps({"v": 1, "status": "succeeded", "exit_code": 0, **fields})


@pytest.mark.parametrize(
    ("case", "output", "status"),
    [
        ("plain", envelope(stdout="hi\n"), Status.succeeded),
        (
            "last line wins over earlier noise",
            "noise\n" + envelope(status="failed", exit_code=3) + "\n\n",
            Status.failed,
        ),
        ("timed out", envelope(status="timed_out", exit_code=None), Status.timed_out),
        ("signal is dropped", envelope(signal=9), Status.succeeded),
    ],
)
def test_parse_envelope_reads_the_last_line(case, output, status):
    assert parse_envelope(output).status is status, case


@pytest.mark.parametrize(
    ("case", "output", "message"),
    [
        ("nothing", "", "without reporting"),
        ("blank lines", "\n \n", "without reporting"),
        ("not json", "Traceback ...", "unreadable"),
        ("a list", "[1, 2]", "unknown version"),
        ("another version", json.dumps({"v": 2, "status": "succeeded"}), "unknown version"),
        ("invalid field", envelope(exit_code="zero"), "invalid result"),
        ("impossible status", envelope(status="cancelled"), "impossible status"),
        ("queued is impossible", envelope(status="queued"), "impossible status"),
    ],
)
def test_parse_envelope_refuses_what_the_runner_never_writes(case, output, message):
    with pytest.raises(EnvelopeError, match=message):
        parse_envelope(output)


def test_runner_args_carry_the_limits():
    settings = Settings(output_limit_bytes=2048, max_file_bytes=4096)
    execution = Execution.new(code="x", limits=Limits(timeout_seconds=2.5, memory_mb=64), backend="local")
    args = runner_args(execution, settings, memory_rlimit=False, max_processes=8)
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs == {
        "--code": CODE_PATH,
        "--stdin": STDIN_PATH,
        "--timeout": "2.5",
        "--memory-mb": "64",
        "--output-limit": "2048",
        "--max-processes": "8",
        "--max-file-bytes": "4096",
        "--workdir": "/tmp",
    }
    assert runner_args(execution, settings, memory_rlimit=True, max_processes=8)[-1] == "--memory-rlimit"
