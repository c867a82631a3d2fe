"""How backends talk to the sandbox runner: its command line and its result envelope.

The runner itself (sandbox-image/runner.py) is standard-library only and ships
inside the sandbox; this module is the system's side of the same contract.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

import executioner.sandbox.runner as runner_module
from executioner.files import relative_path_problem
from executioner.models import Execution, Outcome, Status
from executioner.runtimes import RUNTIME_PACKAGES_PATH, RUNTIMES
from executioner.settings import Settings

# Paths inside every sandbox, whatever the backend.
RUNNER_PATH = "/opt/executioner/runner.py"
INPUT_DIR = "/sandbox"
CODE_PATH = f"{INPUT_DIR}/main.py"
STDIN_PATH = f"{INPUT_DIR}/stdin"
# A cold sandbox's input files: one file each, in the request's order, and the manifest the runner places them from.
FILES_DIR = f"{INPUT_DIR}/files"
FILES_MANIFEST_PATH = f"{INPUT_DIR}/files.json"
RUNNER_STATUSES = {Status.succeeded, Status.failed, Status.timed_out, Status.memory_exceeded, Status.error}
# How the runner's live-output lines begin (the envelope begins with '{"v":'). Only the runner writes its stdout.
CHUNK_PREFIX = '{"stream":'
OUTPUT_STREAMS = ("stdout", "stderr")


def runner_source() -> Path:
    return Path(runner_module.__file__)


def input_file_source(index: int) -> str:
    """Where the execution's input file number `index` is inside a cold sandbox."""
    return f"{FILES_DIR}/{index}"


def files_manifest(execution: Execution) -> bytes:
    """The manifest at FILES_MANIFEST_PATH: each input file's path in the working directory and where it is."""
    entries = [{"path": file.path, "source": input_file_source(i)} for i, file in enumerate(execution.files)]
    return json.dumps(entries).encode()


def runtime_has_packages(execution: Execution) -> bool:
    """Whether the execution's runtime brings packages (at RUNTIME_PACKAGES_PATH in its sandbox)."""
    return bool(RUNTIMES[execution.runtime].packages)


def runner_args(execution: Execution, settings: Settings, *, memory_rlimit: bool, max_processes: int) -> list[str]:
    """The runner's arguments (after the interpreter and the runner's path)."""
    args = [
        "--code",
        CODE_PATH,
        "--stdin",
        STDIN_PATH,
        "--timeout",
        f"{execution.limits.timeout_seconds:g}",
        "--memory-mb",
        str(execution.limits.memory_mb),
        "--output-limit",
        str(settings.output_limit_bytes),
        "--max-processes",
        str(max_processes),
        "--max-file-bytes",
        str(settings.max_file_bytes),
        "--workdir",
        "/tmp",
        "--max-artifacts",
        str(settings.max_artifacts),
        "--max-artifact-bytes",
        str(settings.max_artifact_bytes),
    ]
    if execution.files:
        args += ["--files", FILES_MANIFEST_PATH]
    if runtime_has_packages(execution):
        args += ["--runtime-path", RUNTIME_PACKAGES_PATH]
    if memory_rlimit:
        args.append("--memory-rlimit")
    return args


# A warm sandbox's runner is started with this alone, and waits for warm_job's payload on its stdin.
JOB_ON_STDIN = runner_module.JOB_ON_STDIN
CODE_FD = runner_module.CODE_FD


def warm_job(execution: Execution, settings: Settings, *, memory_rlimit: bool, max_processes: int) -> bytes:
    """The job a warm sandbox waits for: its length (8 bytes, big-endian), then the runner's options (as for a cold
    start, minus the stdin file and the files' manifest), the code, the stdin and the input files, in JSON."""
    args = runner_args(execution, settings, memory_rlimit=memory_rlimit, max_processes=max_processes)
    for option in ("--stdin", "--files"):
        if option in args:
            at = args.index(option)
            del args[at : at + 2]
    files = [file.model_dump() for file in execution.files]
    body = json.dumps({"args": args, "code": execution.code, "stdin": execution.stdin, "files": files}).encode()
    return len(body).to_bytes(runner_module.JOB_LENGTH_BYTES, "big") + body


class EnvelopeError(ValueError):
    """The sandbox ended without a well-formed result envelope."""


class OutputSink(Protocol):
    """Where a backend sends the program's output while it runs (core/streams.py has the implementations)."""

    def write(self, stream: str, data: bytes) -> None:
        """Bytes the runner kept of `stream` ("stdout" or "stderr"), in order."""

    def truncated(self, stream: str) -> None:
        """The stream reached the output cap: nothing more of it follows."""


class RunnerLines:
    """Reads the runner's stdout as it arrives, in pieces of any size: chunk lines go to `output` at once, the
    other lines (the envelope) are kept for parse_envelope."""

    def __init__(self, output: OutputSink | None):
        self.output = output
        self._partial = b""
        self._kept: list[bytes] = []
        self.ended = False  # the envelope, the runner's last line, has arrived whole

    def feed(self, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self._line(line)

    def text(self) -> str:
        """The runner's output without its chunk lines, as parse_envelope reads it."""
        if self._partial:
            self._line(self._partial)
            self._partial = b""
        return b"\n".join(self._kept).decode("utf-8", errors="replace")

    def _line(self, line: bytes) -> None:
        if not line.startswith(CHUNK_PREFIX.encode()):
            self._kept.append(line)
            self.ended = self.ended or line.startswith(b'{"v":')
            return
        if self.output is None:
            return
        try:
            chunk = json.loads(line)
            stream = chunk["stream"]
            if stream not in OUTPUT_STREAMS:
                return
            if chunk.get("truncated"):
                self.output.truncated(stream)
            else:
                self.output.write(stream, base64.b64decode(chunk["bytes"], validate=True))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return  # a line cut short by a dying sandbox: the envelope (or its absence) decides the outcome


def parse_envelope(output: str) -> Outcome:
    """Read the runner's last output line (chunk lines aside); anything malformed is the sandbox's failure."""
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith(CHUNK_PREFIX)]
    if not lines:
        raise EnvelopeError("the sandbox ended without reporting a result")
    try:
        envelope = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise EnvelopeError(f"the sandbox reported an unreadable result: {exc}") from exc
    if not isinstance(envelope, dict) or envelope.get("v") != 1:
        raise EnvelopeError("the sandbox reported a result of an unknown version")
    envelope.pop("v")
    envelope.pop("signal", None)
    try:
        outcome = Outcome.model_validate(envelope)
    except ValidationError as exc:
        raise EnvelopeError(f"the sandbox reported an invalid result: {exc.errors()[0]['msg']}") from exc
    if outcome.status not in RUNNER_STATUSES:
        raise EnvelopeError(f"the sandbox reported an impossible status {outcome.status}")
    check_artifacts(outcome)
    return outcome


def check_artifacts(outcome: Outcome) -> None:
    """Artifacts as the runner collects them: distinct relative paths (under outputs/), base64 bytes."""
    seen = set()
    for artifact in outcome.artifacts:
        if problem := relative_path_problem(artifact.path):
            raise EnvelopeError(f"the sandbox reported an artifact at an invalid path {artifact.path!r}: {problem}")
        if artifact.path in seen:
            raise EnvelopeError(f"the sandbox reported the artifact {artifact.path!r} twice")
        seen.add(artifact.path)
        try:
            base64.b64decode(artifact.content_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise EnvelopeError(f"the sandbox reported the artifact {artifact.path!r} in invalid base64") from exc
