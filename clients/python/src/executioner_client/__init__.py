"""A small client for THE_EXECUTIONER's HTTP API (run untrusted Python in sandboxes). Depends on httpx only."""

from ._client import DEFAULT_DEADLINE, AsyncClient, Client, __version__
from ._errors import (
    Conflict,
    ExecutionerError,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    WaitTimeout,
)
from ._events import Event
from ._models import Execution, ExecutionSummary, Limits, Page, Status

__all__ = [
    "DEFAULT_DEADLINE",
    "AsyncClient",
    "Client",
    "Conflict",
    "Event",
    "Execution",
    "ExecutionSummary",
    "ExecutionerError",
    "Limits",
    "NotFound",
    "Page",
    "RateLimited",
    "Status",
    "Unauthorized",
    "Unavailable",
    "WaitTimeout",
    "__version__",
]
