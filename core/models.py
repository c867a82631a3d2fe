"""The execution record, its state machine, and the documents the API speaks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from executioner.settings import Settings


def utcnow() -> datetime:
    return datetime.now(UTC)


class Status(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    timed_out = "timed_out"
    memory_exceeded = "memory_exceeded"
    cancelled = "cancelled"
    error = "error"

    @property
    def terminal(self) -> bool:
        return self not in (Status.queued, Status.running)


TERMINAL_STATUSES = frozenset(s for s in Status if s.terminal)

# Which status may follow which: terminal states are final.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.queued: frozenset({Status.running, Status.cancelled, Status.error}),
    Status.running: TERMINAL_STATUSES,
}


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout_seconds: float = Field(description="Wall-clock limit in seconds.")
    memory_mb: int = Field(description="Memory limit in MiB.")


class InputFile(BaseModel):
    """A file placed in the program's working directory before it starts."""

    model_config = ConfigDict(extra="forbid", strict=True)

    path: str = Field(description="Relative, normalised path in the working directory, e.g. data.csv or in/a.txt.")
    content_base64: str = Field(description="The file's bytes, base64-encoded.")


class Artifact(BaseModel):
    """A file the program wrote under outputs/ in its working directory, kept with the result."""

    path: str = Field(description="Its path under outputs/, e.g. plot.png; fetch it at .../artifacts/{path}.")
    size: int = Field(description="Bytes.")
    content_type: str = Field(description="Its media type, from the file name's extension.")


class ArtifactContent(BaseModel):
    """An artifact as the sandbox's runner reports it: path (under outputs/) and bytes."""

    path: str
    content_base64: str


class ExecutionSummary(BaseModel):
    """An execution in a list: what it is and how it ended, without its code, input or output
    (read one execution for those), so a page stays small whatever the programs printed."""

    id: str
    status: Status
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    exit_code: int | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    error: str | None = Field(None, description="Why the execution ended the way it did, when not obvious.")
    limits: Limits
    backend: str
    runtime: str = Field("python", description="The runtime it ran in (GET /v1/runtimes).")


class ExecutionPublic(ExecutionSummary):
    """An execution as users see it: the summary plus its code, input and output."""

    stdout: str = ""
    stderr: str = ""
    code: str = ""
    stdin: str = ""
    files: list[InputFile] = Field(default_factory=list, description="The input files it was given.")
    artifacts: list[Artifact] = Field(
        default_factory=list, description="Files the program wrote under outputs/ (GET .../artifacts/{path})."
    )
    artifacts_truncated: bool = Field(
        False, description="The program wrote more under outputs/ than the artifact caps keep; the rest was dropped."
    )
    payload_expired: bool = Field(
        False,
        description="code, stdin, files, stdout, stderr and artifacts were dropped "
        "(EXECUTIONER_PAYLOAD_RETENTION_SECONDS).",
    )
    limits_enforced: str | None = Field(
        None,
        description='How the sandbox\'s memory and process limits were enforced: "cgroup" (a memory and pids cgroup '
        'per execution) or "rlimit" (resource limits only, weaker) on the local backend; unset before it ran and on '
        "kubernetes (the pod's own limits).",
    )
    sandbox_start: str | None = Field(
        None,
        description='Which path served the execution on the local backend: "warm" (a sandbox started before it came, '
        'from the pool) or "cold" (one started for it); unset before it ran.',
    )


class Execution(ExecutionPublic):
    """The stored record: the public document plus what only the system sees."""

    owner: str = "anonymous"
    # What asked for it beyond the owner: an ExecutionRequest's uid, so the operator acts only on its own execution.
    source: str | None = None

    @classmethod
    def new(
        cls,
        *,
        code: str,
        limits: Limits,
        backend: str,
        stdin: str = "",
        runtime: str = "python",
        files: list[InputFile] | None = None,
        owner: str = "anonymous",
        source: str | None = None,
        status: Status = Status.queued,
    ) -> Execution:
        """A new execution with a fresh id, created now."""
        return cls(
            id=uuid.uuid4().hex,
            status=status,
            created_at=utcnow(),
            limits=limits,
            backend=backend,
            code=code,
            stdin=stdin,
            runtime=runtime,
            files=files or [],
            owner=owner,
            source=source,
        )

    def public(self) -> ExecutionPublic:
        return ExecutionPublic.model_validate(self.model_dump(exclude={"owner", "source"}))


SUMMARY_FIELDS = tuple(ExecutionSummary.model_fields)


class ExecutionPage(BaseModel):
    items: list[ExecutionSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page.")


CANCELLED_BY_REQUEST = "cancelled by request"


def memory_exceeded_reason(memory_mb: int) -> str:
    return f"the program used more than {memory_mb} MiB of memory"


class Outcome(BaseModel):
    """What a sandbox backend reports when an execution ends."""

    status: Status
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration_ms: int | None = None
    error: str | None = None
    # "cgroup" or "rlimit": how the local backend held the sandbox to its limits (kept in the record).
    limits_enforced: str | None = None
    # "warm" or "cold": whether a pooled local sandbox or a freshly started one ran it (kept in the record).
    sandbox_start: str | None = None
    # What the program left under outputs/, within the caps: stored beside the record, listed in it as Artifacts.
    artifacts: list[ArtifactContent] = Field(default_factory=list, exclude=True)
    artifacts_truncated: bool = False
    # When the runner started the program (Unix time): for the start-latency metric, never stored in the record.
    program_started_at: float | None = Field(None, exclude=True)

    @classmethod
    def cancelled(cls, reason: str = CANCELLED_BY_REQUEST) -> Outcome:
        return cls(status=Status.cancelled, error=reason)

    @classmethod
    def failure(cls, status: Status, reason: str) -> Outcome:
        """An end the program did not report itself: the sandbox's or the system's failure, with why."""
        return cls(status=status, error=reason)

    def result_fields(self) -> dict[str, object]:
        """The fields a terminal transition writes to the record."""
        return self.model_dump(exclude={"status"})


class ExecutionCreateBase(BaseModel):
    """The POST body's shape; execution_create_model writes this deployment's bounds into it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    code: str
    stdin: str = ""
    runtime: str = "python"
    files: list[InputFile] = []
    limits: Limits


def execution_create_model(settings: Settings) -> type[ExecutionCreateBase]:
    """The POST body, with the bounds this deployment allows written into its schema."""
    # Field types built at run time are values to a type checker: name them as such.
    timeout: Any = Annotated[
        float, Field(gt=0, le=settings.max_timeout_seconds, description="Wall-clock limit in seconds.")
    ]
    memory: Any = Annotated[
        int, Field(ge=settings.min_memory_mb, le=settings.max_memory_mb, description="Memory limit in MiB.")
    ]
    code: Any = Annotated[
        str, Field(min_length=1, description=f"Python source, at most {settings.max_code_bytes} bytes.")
    ]
    stdin: Any = Annotated[str, Field(description=f"Standard input, at most {settings.max_stdin_bytes} bytes.")]
    runtime: Any = Annotated[
        Literal[tuple(settings.runtimes)],
        Field(description="Which runtime runs the program: its Python and packages (GET /v1/runtimes)."),
    ]
    files: Any = Annotated[
        list[InputFile],
        Field(
            max_length=settings.max_input_files,
            description=f"Files placed in the program's working directory before it starts: at most "
            f"{settings.max_input_files}, {settings.max_input_file_bytes} bytes each and "
            f"{settings.max_input_files_total_bytes} bytes together.",
        ),
    ]
    limits = create_model(
        "LimitsCreate",
        __config__=ConfigDict(extra="forbid", strict=True),
        timeout_seconds=(timeout, settings.default_timeout_seconds),
        memory_mb=(memory, settings.default_memory_mb),
    )
    return create_model(
        "ExecutionCreate",
        __base__=ExecutionCreateBase,
        code=(code, ...),
        stdin=(stdin, ""),
        runtime=(runtime, "python"),
        files=(files, Field(default_factory=list)),
        limits=(limits, Field(default_factory=limits)),
    )
