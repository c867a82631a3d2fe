"""Client and AsyncClient: the same methods, blocking and asyncio."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from ._errors import (
    ExecutionerError,
    RateLimited,
    Unavailable,
    WaitTimeout,
    error_from_response,
    wait_maximum,
)
from ._events import Event, aevents_of, events_of
from ._models import Execution, Page, Runtime

__version__ = "0.1.0"

#: How long `run()` may take in all (queueing, refusals it retries, the program, waiting) unless told otherwise.
DEFAULT_DEADLINE = 300.0
#: The API's longest `?wait` by default (EXECUTIONER_MAX_WAIT_SECONDS); lowered when a server answers it allows less.
DEFAULT_MAX_WAIT = 30.0
#: Pause between polls when the server allows no waiting at all.
_POLL_SECONDS = 0.5
#: Reconnections an event stream makes (with Last-Event-ID, so nothing is missed or repeated) before giving up.
_STREAM_RECONNECTS = 5
#: Network errors after which an event stream reconnects.
_DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.ReadTimeout, httpx.ConnectError)
#: Retry-After assumed when a 429 or 503 carries none.
_DEFAULT_RETRY_AFTER = 1.0

_EXECUTIONS = "/v1/executions"
_RUNTIMES = "/v1/runtimes"

#: Input files: path in the program's working directory -> its bytes (str is sent as UTF-8).
Files = Mapping[str, bytes | str]


def _path(execution_id: str) -> str:
    return f"{_EXECUTIONS}/{quote(execution_id, safe='')}"


def _artifact_path(execution_id: str, path: str) -> str:
    return f"{_path(execution_id)}/artifacts/{quote(path)}"


class _Core:
    """What both clients share: headers, the request body, decoding answers and deciding on retries."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_wait = DEFAULT_MAX_WAIT
        self._headers = {"User-Agent": f"executioner-client/{__version__}", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    @staticmethod
    def _body(
        code: str,
        stdin: str,
        timeout: float | None,
        memory_mb: int | None,
        runtime: str | None,
        files: Files | None,
        extras: dict[str, Any],
    ) -> dict:
        body: dict[str, Any] = {"code": code, "stdin": stdin}
        if runtime is not None:
            body["runtime"] = runtime
        if files:
            body["files"] = [
                {
                    "path": path,
                    "content_base64": base64.b64encode(data.encode() if isinstance(data, str) else data).decode(),
                }
                for path, data in files.items()
            ]
        limits: dict[str, Any] = {}
        if timeout is not None:
            limits["timeout_seconds"] = timeout
        if memory_mb is not None:
            limits["memory_mb"] = memory_mb
        if limits:
            body["limits"] = limits
        body.update(extras)
        return body

    def _wait(self, wanted: float, deadline: float | None) -> float:
        """Seconds to send as `?wait`: what the caller wants, never more than the server allows or time left."""
        wait = min(wanted, self.max_wait)
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
        return round(max(0.0, wait), 3)

    @staticmethod
    def _content(response: httpx.Response) -> bytes:
        if response.is_success:
            return response.content
        raise error_from_response(response)

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        if response.is_success:
            return response.json()
        raise error_from_response(response)

    def _retry(
        self, error: ExecutionerError, params: dict[str, Any] | None, retry: bool, deadline: float | None
    ) -> tuple[float, dict[str, Any] | None]:
        """After a refusal: (seconds to sleep, query for the next attempt), or raise `error`."""
        if error.status_code == 422 and params and "wait" in params:
            maximum = wait_maximum(error.detail)
            if maximum is not None and maximum < params["wait"]:
                self.max_wait = maximum  # remembered: later requests never ask for more
                return 0.0, {**params, "wait": self._wait(params["wait"], deadline)}
        if retry and isinstance(error, RateLimited | Unavailable):
            delay = error.retry_after if error.retry_after is not None else _DEFAULT_RETRY_AFTER
            if deadline is None or time.monotonic() + delay < deadline:
                return delay, params
        raise error

    def _request_args(self, params: dict[str, Any] | None) -> dict[str, Any]:
        wait = params.get("wait", 0) if params else 0
        return {"params": params, "headers": self._headers, "timeout": self.timeout + wait}

    @staticmethod
    def _timed_out(execution: Execution, deadline: float | None) -> None:
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(f"execution {execution.id} is still {execution.status} at the deadline", execution)


class Client(_Core):
    """A blocking client. `timeout` is the per-request network timeout, on top of any `?wait`.

    >>> with Client("http://127.0.0.1:8000") as client:
    ...     print(client.run("print('hi')").stdout)
    """

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 30.0):
        super().__init__(base_url, api_key, timeout)
        self._http = httpx.Client(base_url=self.base_url)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        retry: bool = False,
        deadline: float | None = None,
    ) -> Any:
        while True:
            response = self._http.request(method, path, json=json, **self._request_args(params))
            try:
                return self._decode(response)
            except ExecutionerError as error:
                delay, params = self._retry(error, params, retry, deadline)
                if delay:
                    time.sleep(delay)

    def submit(
        self,
        code: str,
        stdin: str = "",
        timeout: float | None = None,
        memory_mb: int | None = None,
        *,
        runtime: str | None = None,
        files: Files | None = None,
        **extras: Any,
    ) -> Execution:
        """Create an execution and return it as accepted (usually `queued`). `runtime` names one of `runtimes()`;
        `files` maps paths in the program's working directory to their bytes."""
        body = self._body(code, stdin, timeout, memory_mb, runtime, files, extras)
        return Execution.from_json(self._request("POST", _EXECUTIONS, json=body))

    def get(self, execution_id: str, wait: float = 0) -> Execution:
        """Read one execution; with `wait`, the server holds the answer up to that long for a terminal status."""
        params = {"wait": self._wait(wait, None)} if wait else None
        return Execution.from_json(self._request("GET", _path(execution_id), params=params))

    def wait(self, execution_id: str, timeout: float | None = None) -> Execution:
        """Block until the execution is terminal (WaitTimeout after `timeout` seconds; None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        return self._until_terminal(self._get(execution_id, deadline), deadline)

    def run(
        self,
        code: str,
        stdin: str = "",
        timeout: float | None = None,
        memory_mb: int | None = None,
        *,
        runtime: str | None = None,
        files: Files | None = None,
        deadline: float = DEFAULT_DEADLINE,
        **extras: Any,
    ) -> Execution:
        """Run `code` (in `runtime`, with `files`, as `submit`) and return the finished execution. Refusals with Retry-After (429, 503) are retried after
        the delay the server asks for; everything, waiting included, ends within `deadline` seconds
        (WaitTimeout, or the last refusal when its Retry-After would pass the deadline)."""
        end = time.monotonic() + deadline
        body = self._body(code, stdin, timeout, memory_mb, runtime, files, extras)
        params = {"wait": self._wait(deadline, end)}
        data = self._request("POST", _EXECUTIONS, params=params, json=body, retry=True, deadline=end)
        return self._until_terminal(Execution.from_json(data), end)

    def runtimes(self) -> list[Runtime]:
        """The runtimes the server offers, with their Python and pinned packages."""
        return [Runtime.from_json(item) for item in self._request("GET", _RUNTIMES)]

    def artifact(self, execution_id: str, path: str) -> bytes:
        """The bytes of one artifact (a file the program wrote under outputs/; see `Execution.artifacts`).
        NotFound for an unknown one, Gone once the execution's payload retention has passed."""
        response = self._http.get(_artifact_path(execution_id, path), headers=self._headers, timeout=self.timeout)
        return self._content(response)

    def cancel(self, execution_id: str) -> Execution:
        """Cancel a queued or running execution (Conflict if it already finished)."""
        return Execution.from_json(self._request("DELETE", _path(execution_id)))

    def events(self, execution_id: str, last_event_id: str | None = None) -> Iterator[Event]:
        """The execution's events as they happen: its status changes, its output as it is written, and last its
        final document (`Event.execution`). A dropped connection is resumed after the last event received."""
        reconnects = 0
        while True:
            headers = {**self._headers, "Accept": "text/event-stream"}
            if last_event_id:
                headers["Last-Event-ID"] = last_event_id
            try:
                with self._http.stream("GET", f"{_path(execution_id)}/events", headers=headers, timeout=None) as r:
                    if not r.is_success:
                        r.read()
                        raise error_from_response(r)
                    for event in events_of(r.iter_lines()):
                        last_event_id = event.id or last_event_id
                        yield event
                        if event.kind == "result":
                            return
            except _DROPPED:
                reconnects += 1
                if reconnects > _STREAM_RECONNECTS:
                    raise

    def list(self, limit: int = 20, cursor: str | None = None) -> Page:
        """Your recent executions, newest first, as summaries (no code, input or output)."""
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return Page.from_json(self._request("GET", _EXECUTIONS, params=params))

    def _get(self, execution_id: str, deadline: float | None) -> Execution:
        params = {"wait": self._wait(DEFAULT_MAX_WAIT, deadline)}
        data = self._request("GET", _path(execution_id), params=params, retry=True, deadline=deadline)
        return Execution.from_json(data)

    def _until_terminal(self, execution: Execution, deadline: float | None) -> Execution:
        while not execution.status.terminal:
            self._timed_out(execution, deadline)
            if self.max_wait <= 0:
                time.sleep(_POLL_SECONDS)
            execution = self._get(execution.id, deadline)
        return execution


class AsyncClient(_Core):
    """The asyncio client: the same methods as Client, as coroutines."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 30.0):
        super().__init__(base_url, api_key, timeout)
        self._http = httpx.AsyncClient(base_url=self.base_url)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    aclose = close

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        retry: bool = False,
        deadline: float | None = None,
    ) -> Any:
        while True:
            response = await self._http.request(method, path, json=json, **self._request_args(params))
            try:
                return self._decode(response)
            except ExecutionerError as error:
                delay, params = self._retry(error, params, retry, deadline)
                if delay:
                    await asyncio.sleep(delay)

    async def submit(
        self,
        code: str,
        stdin: str = "",
        timeout: float | None = None,
        memory_mb: int | None = None,
        *,
        runtime: str | None = None,
        files: Files | None = None,
        **extras: Any,
    ) -> Execution:
        body = self._body(code, stdin, timeout, memory_mb, runtime, files, extras)
        return Execution.from_json(await self._request("POST", _EXECUTIONS, json=body))

    async def get(self, execution_id: str, wait: float = 0) -> Execution:
        params = {"wait": self._wait(wait, None)} if wait else None
        return Execution.from_json(await self._request("GET", _path(execution_id), params=params))

    async def wait(self, execution_id: str, timeout: float | None = None) -> Execution:
        deadline = None if timeout is None else time.monotonic() + timeout
        return await self._until_terminal(await self._get(execution_id, deadline), deadline)

    async def run(
        self,
        code: str,
        stdin: str = "",
        timeout: float | None = None,
        memory_mb: int | None = None,
        *,
        runtime: str | None = None,
        files: Files | None = None,
        deadline: float = DEFAULT_DEADLINE,
        **extras: Any,
    ) -> Execution:
        end = time.monotonic() + deadline
        body = self._body(code, stdin, timeout, memory_mb, runtime, files, extras)
        params = {"wait": self._wait(deadline, end)}
        data = await self._request("POST", _EXECUTIONS, params=params, json=body, retry=True, deadline=end)
        return await self._until_terminal(Execution.from_json(data), end)

    async def runtimes(self) -> list[Runtime]:
        return [Runtime.from_json(item) for item in await self._request("GET", _RUNTIMES)]

    async def artifact(self, execution_id: str, path: str) -> bytes:
        response = await self._http.get(_artifact_path(execution_id, path), headers=self._headers, timeout=self.timeout)
        return self._content(response)

    async def cancel(self, execution_id: str) -> Execution:
        return Execution.from_json(await self._request("DELETE", _path(execution_id)))

    async def events(self, execution_id: str, last_event_id: str | None = None) -> AsyncIterator[Event]:
        """As `Client.events`."""
        reconnects = 0
        while True:
            headers = {**self._headers, "Accept": "text/event-stream"}
            if last_event_id:
                headers["Last-Event-ID"] = last_event_id
            try:
                async with self._http.stream(
                    "GET", f"{_path(execution_id)}/events", headers=headers, timeout=None
                ) as r:
                    if not r.is_success:
                        await r.aread()
                        raise error_from_response(r)
                    async for event in aevents_of(r.aiter_lines()):
                        last_event_id = event.id or last_event_id
                        yield event
                        if event.kind == "result":
                            return
            except _DROPPED:
                reconnects += 1
                if reconnects > _STREAM_RECONNECTS:
                    raise

    async def list(self, limit: int = 20, cursor: str | None = None) -> Page:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return Page.from_json(await self._request("GET", _EXECUTIONS, params=params))

    async def _get(self, execution_id: str, deadline: float | None) -> Execution:
        params = {"wait": self._wait(DEFAULT_MAX_WAIT, deadline)}
        data = await self._request("GET", _path(execution_id), params=params, retry=True, deadline=deadline)
        return Execution.from_json(data)

    async def _until_terminal(self, execution: Execution, deadline: float | None) -> Execution:
        while not execution.status.terminal:
            self._timed_out(execution, deadline)
            if self.max_wait <= 0:
                await asyncio.sleep(_POLL_SECONDS)
            execution = await self._get(execution.id, deadline)
        return execution
