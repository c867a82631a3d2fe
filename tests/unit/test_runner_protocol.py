"""The system's side of the runner contract: the runner's arguments and the envelope it reports."""

from __future__ import annotations

import json

import pytest

from executioner.models import Execution, InputFile, Limits, Status
from executioner.runner_protocol import (
    CODE_PATH,
    FILES_MANIFEST_PATH,
    STDIN_PATH,
    EnvelopeError,
    files_manifest,
    input_file_source,
    parse_envelope,
    runner_args,
    warm_job,
)
from executioner.runtimes import RUNTIME_PACKAGES_PATH
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
        ("artifact outside outputs", envelope(artifacts=[{"path": "../x", "content_base64": ""}]), "invalid path"),
        ("absolute artifact", envelope(artifacts=[{"path": "/etc/passwd", "content_base64": ""}]), "invalid path"),
        ("artifact twice", envelope(artifacts=[{"path": "a", "content_base64": ""}] * 2), "twice"),
        ("artifact not base64", envelope(artifacts=[{"path": "a", "content_base64": "%%"}]), "invalid base64"),
        ("artifact without bytes", envelope(artifacts=[{"path": "a"}]), "invalid result"),
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
        "--max-artifacts": "8",
        "--max-artifact-bytes": str(2 * 1024 * 1024),
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


def test_artifacts_come_back_in_the_outcome():
    artifacts = [{"path": "plot.png", "content_base64": "iVBORw=="}, {"path": "sub/a.txt", "content_base64": ""}]
    outcome = parse_envelope(envelope(artifacts=artifacts, artifacts_truncated=True))
    assert [(a.path, a.content_base64) for a in outcome.artifacts] == [("plot.png", "iVBORw=="), ("sub/a.txt", "")]
    assert outcome.artifacts_truncated is True
    assert "artifacts" not in outcome.result_fields()  # stored beside the record, not in it
    assert parse_envelope(envelope()).artifacts == []


def with_files(runtime: str = "python") -> Execution:
    files = [InputFile(path="data.csv", content_base64="YSxiCg=="), InputFile(path="in/b.txt", content_base64="")]
    return Execution.new(
        code="x", limits=Limits(timeout_seconds=1, memory_mb=64), backend="local", runtime=runtime, files=files
    )


def test_a_cold_sandbox_finds_its_files_through_the_manifest():
    execution = with_files()
    args = runner_args(execution, Settings(), memory_rlimit=False, max_processes=8)
    assert args[args.index("--files") + 1] == FILES_MANIFEST_PATH
    assert json.loads(files_manifest(execution)) == [
        {"path": "data.csv", "source": input_file_source(0)},
        {"path": "in/b.txt", "source": input_file_source(1)},
    ]
    assert input_file_source(1) == "/sandbox/files/1"
    plain = Execution.new(code="x", limits=Limits(timeout_seconds=1, memory_mb=64), backend="local")
    assert "--files" not in runner_args(plain, Settings(), memory_rlimit=False, max_processes=8)


def test_only_a_runtime_with_packages_gets_them_on_its_path():
    python = runner_args(with_files("python"), Settings(), memory_rlimit=False, max_processes=8)
    data = runner_args(with_files("python-data"), Settings(), memory_rlimit=False, max_processes=8)
    assert "--runtime-path" not in python
    assert data[data.index("--runtime-path") + 1] == RUNTIME_PACKAGES_PATH


def test_a_warm_job_carries_its_files_inline():
    payload = warm_job(with_files(), Settings(), memory_rlimit=True, max_processes=8)
    job = json.loads(payload[8:])
    assert int.from_bytes(payload[:8], "big") == len(payload) - 8
    assert job["files"] == [
        {"path": "data.csv", "content_base64": "YSxiCg=="},
        {"path": "in/b.txt", "content_base64": ""},
    ]
    assert "--files" not in job["args"] and "--stdin" not in job["args"]
    assert job["args"][-1] == "--memory-rlimit"
