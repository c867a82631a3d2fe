"""Typed results: frozen dataclasses made from the API's JSON documents (unknown fields are ignored)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """An execution's status (a str Enum: compares equal to the API's strings)."""

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
        """True once the execution has ended: a terminal status never changes again."""
        return self not in (Status.queued, Status.running)


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class Limits:
    timeout_seconds: float
    memory_mb: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Limits:
        return cls(timeout_seconds=float(data["timeout_seconds"]), memory_mb=int(data["memory_mb"]))


@dataclass(frozen=True)
class InputFile:
    """A file the program was given in its working directory."""

    path: str
    content: bytes

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InputFile:
        return cls(path=data["path"], content=base64.b64decode(data.get("content_base64", "")))


@dataclass(frozen=True)
class Artifact:
    """A file the program wrote under outputs/: fetch its bytes with `artifact(execution_id, path)`."""

    path: str
    size: int
    content_type: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        return cls(path=data["path"], size=int(data["size"]), content_type=data["content_type"])


@dataclass(frozen=True)
class Package:
    name: str
    version: str


@dataclass(frozen=True)
class Runtime:
    """A runtime the server offers (`runtimes()`): pass its name as `runtime=`."""

    name: str
    description: str
    python_version: str
    packages: tuple[Package, ...] = ()
    default: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Runtime:
        return cls(
            name=data["name"],
            description=data.get("description", ""),
            python_version=data.get("python_version", ""),
            packages=tuple(Package(name=p["name"], version=p["version"]) for p in data.get("packages", [])),
            default=bool(data.get("default", False)),
        )


@dataclass(frozen=True, kw_only=True)
class ExecutionSummary:
    """An execution in a list: what it is and how it ended, without its code, input or output."""

    id: str
    status: Status
    created_at: datetime
    limits: Limits
    backend: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    exit_code: int | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    error: str | None = None
    runtime: str = "python"

    @staticmethod
    def _summary_fields(data: dict[str, Any]) -> dict[str, Any]:
        created_at = _time(data["created_at"])
        assert created_at is not None, "created_at is required"
        return {
            "id": data["id"],
            "status": Status(data["status"]),
            "created_at": created_at,
            "limits": Limits.from_json(data["limits"]),
            "backend": data["backend"],
            "started_at": _time(data.get("started_at")),
            "finished_at": _time(data.get("finished_at")),
            "duration_ms": data.get("duration_ms"),
            "exit_code": data.get("exit_code"),
            "stdout_truncated": bool(data.get("stdout_truncated", False)),
            "stderr_truncated": bool(data.get("stderr_truncated", False)),
            "error": data.get("error"),
            "runtime": data.get("runtime", "python"),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExecutionSummary:
        return ExecutionSummary(**ExecutionSummary._summary_fields(data))


@dataclass(frozen=True, kw_only=True)
class Execution(ExecutionSummary):
    """One execution: the summary plus its code, input and output."""

    stdout: str = ""
    stderr: str = ""
    code: str = ""
    stdin: str = ""
    files: tuple[InputFile, ...] = field(default=())
    artifacts: tuple[Artifact, ...] = field(default=())
    artifacts_truncated: bool = False
    payload_expired: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Execution:
        return cls(
            **cls._summary_fields(data),
            stdout=data.get("stdout", ""),
            stderr=data.get("stderr", ""),
            code=data.get("code", ""),
            stdin=data.get("stdin", ""),
            files=tuple(InputFile.from_json(item) for item in data.get("files", [])),
            artifacts=tuple(Artifact.from_json(item) for item in data.get("artifacts", [])),
            artifacts_truncated=bool(data.get("artifacts_truncated", False)),
            payload_expired=bool(data.get("payload_expired", False)),
        )


@dataclass(frozen=True)
class Page:
    """One page of `list()`, newest first; pass `next_cursor` to `list()` for the next one (None: no more)."""

    items: tuple[ExecutionSummary, ...] = ()
    next_cursor: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Page:
        return cls(
            items=tuple(ExecutionSummary.from_json(item) for item in data.get("items", [])),
            next_cursor=data.get("next_cursor"),
        )
