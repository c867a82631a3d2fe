"""How backends talk to the sandbox runner: its command line and its result envelope.

The runner itself (sandbox-image/runner.py) is standard-library only and ships
inside the sandbox; this module is the system's side of the same contract.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

import executioner.sandbox.runner as runner_module
from executioner.models import Execution, Outcome, Status
from executioner.settings import Settings

# Paths inside every sandbox, whatever the backend.
RUNNER_PATH = "/opt/executioner/runner.py"
INPUT_DIR = "/sandbox"
CODE_PATH = f"{INPUT_DIR}/main.py"
STDIN_PATH = f"{INPUT_DIR}/stdin"
RUNNER_STATUSES = {Status.succeeded, Status.failed, Status.timed_out, Status.memory_exceeded, Status.error}


def runner_source() -> Path:
    return Path(runner_module.__file__)


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
    ]
    if memory_rlimit:
        args.append("--memory-rlimit")
    return args


class EnvelopeError(ValueError):
    """The sandbox ended without a well-formed result envelope."""


def parse_envelope(output: str) -> Outcome:
    """Read the runner's last output line; anything malformed is the sandbox's failure."""
    lines = [line for line in output.splitlines() if line.strip()]
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
    return outcome
