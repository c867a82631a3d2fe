"""Errors the API answers, as exceptions that name the offending field."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from ._models import Execution

# FastAPI's first `loc` element says where the field was: it is not part of the field's name.
_LOCATIONS = ("body", "query", "path", "header", "cookie")


class ExecutionerError(Exception):
    """The API refused a request. `field` names the offending field when the API said which (e.g. "code",
    "limits.timeout_seconds", "wait"); `detail` is the error body's `detail` as sent."""

    def __init__(self, status_code: int | None, message: str, field: str | None = None, detail: Any = None):
        super().__init__(f"{status_code}: {message}" if status_code is not None else message)
        self.status_code = status_code
        self.message = message
        self.field = field
        self.detail = detail


class Unauthorized(ExecutionerError):
    """401: the API key is missing or unknown."""


class NotFound(ExecutionerError):
    """404: no such execution (or it belongs to another key)."""


class Gone(ExecutionerError):
    """410: what was asked for was dropped after its retention (an artifact past the payload retention)."""


class Conflict(ExecutionerError):
    """409: the execution already finished (cancel)."""


class _RetryLater(ExecutionerError):
    def __init__(
        self,
        status_code: int,
        message: str,
        field: str | None = None,
        detail: Any = None,
        *,
        retry_after: float | None = None,
    ):
        super().__init__(status_code, message, field, detail)
        self.retry_after = retry_after


class RateLimited(_RetryLater):
    """429: a rate limit, per-key cap or byte budget; `retry_after` is the server's Retry-After in seconds."""


class Unavailable(_RetryLater):
    """503: the queue or the store is full or away; `retry_after` is the server's Retry-After in seconds."""


class WaitTimeout(ExecutionerError, TimeoutError):
    """The execution was not terminal when the caller's deadline passed; `execution` is the last one seen."""

    def __init__(self, message: str, execution: Execution | None = None):
        super().__init__(None, message)
        self.execution = execution


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _field(loc: Any) -> str | None:
    if not isinstance(loc, list) or not loc:
        return None
    parts = [str(part) for part in loc]
    if parts[0] in _LOCATIONS and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)


def wait_maximum(detail: Any) -> float | None:
    """The server's longest `?wait` when a 422's detail refused our `wait` query parameter for being too large."""
    if not isinstance(detail, list):
        return None
    for item in detail:
        if isinstance(item, dict) and item.get("loc") == ["query", "wait"]:
            ctx = item.get("ctx")
            if isinstance(ctx, dict) and isinstance(ctx.get("le"), int | float):
                return float(ctx["le"])
    return None


def error_from_response(response: httpx.Response) -> ExecutionerError:
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    field = None
    if isinstance(detail, list) and detail:
        messages = [str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail]
        message = "; ".join(messages)
        first = detail[0]
        field = _field(first.get("loc")) if isinstance(first, dict) else None
    elif isinstance(detail, str):
        message = detail
    else:
        message = response.text.strip() or response.reason_phrase or "request failed"
    code = response.status_code
    if code in (429, 503):
        cls = RateLimited if code == 429 else Unavailable
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        return cls(code, message, field, detail, retry_after=retry_after)
    cls_by_code: dict[int, type[ExecutionerError]] = {401: Unauthorized, 404: NotFound, 409: Conflict, 410: Gone}
    return cls_by_code.get(code, ExecutionerError)(code, message, field, detail)
