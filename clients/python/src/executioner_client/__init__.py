"""A small client for THE_EXECUTIONER's HTTP API (run untrusted Python in sandboxes). Depends on httpx only."""

from ._client import DEFAULT_DEADLINE, AsyncClient, Client, __version__
from ._errors import (
    Conflict,
    ExecutionerError,
    Gone,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    WaitTimeout,
)
from ._events import Event
from ._models import Artifact, Execution, ExecutionSummary, InputFile, Limits, Package, Page, Runtime, Status

__all__ = [
    "DEFAULT_DEADLINE",
    "Artifact",
    "AsyncClient",
    "Client",
    "Conflict",
    "Event",
    "Execution",
    "ExecutionSummary",
    "ExecutionerError",
    "Gone",
    "InputFile",
    "Limits",
    "NotFound",
    "Package",
    "Page",
    "RateLimited",
    "Runtime",
    "Status",
    "Unauthorized",
    "Unavailable",
    "WaitTimeout",
    "__version__",
]
