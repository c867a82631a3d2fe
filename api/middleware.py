"""ASGI middleware: request size checked before parsing, security headers on every answer, and, with no API keys,
only the Host names the API is bound to."""

from __future__ import annotations

import ipaddress
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
# The web UI loads only its own files (it shows an image artifact it fetched with the key as a data: URL). /docs sets
# its own (the same, plus its inline script's hash); artifacts set a stricter one.
UI_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    b"connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Answers 413 as soon as a body grows past the limit, whether or not it declared its length."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            {
                "detail": [
                    {
                        "loc": ["body"],
                        "msg": f"the request body is larger than {self.max_bytes} bytes",
                        "type": "too_large",
                    }
                ]
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """The headers every answer carries, unless the route set its own (artifacts: a stricter CSP)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        is_docs = path.startswith("/docs")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                added = SECURITY_HEADERS if is_docs else [*SECURITY_HEADERS, (b"content-security-policy", UI_CSP)]
                headers += [(name, value) for name, value in added if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::"})


def host_name(header: str) -> str:
    """The name in a Host header, without its port: `[::1]:8000` -> `::1`, `Example.COM.:80` -> `example.com`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    if header.count(":") == 1:
        header = header.partition(":")[0]
    return header.rstrip(".")


def allowed_host_names(bound_host: str, extra: list[str]) -> frozenset[str]:
    """Loopback names, the address the API listens on (unless it is a wildcard), and the configured extras."""
    names = set(LOOPBACK_NAMES) | {host_name(name) for name in extra}
    if bound_host not in WILDCARD_ADDRESSES:
        names.add(host_name(bound_host))
    return frozenset(names)


def is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostAllowlist:
    """Open mode (no API keys) answers only requests addressed to its own names or to an IP address: a page on another
    site whose DNS name is rebound to 127.0.0.1 still sends its own name in Host, and gets 400 (rebinding needs a
    name; a Host that is an address was typed or configured as one, e.g. a Service's cluster IP). /healthz and /livez
    stay open to any Host (the kubelet's probes address a pod by IP, and health says nothing)."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str]):
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "*" in self.allowed or scope.get("path") in ("/healthz", "/livez"):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        name = host_name(header)
        if name in self.allowed or is_address(name):
            await self.app(scope, receive, send)
            return
        names = ", ".join(sorted(f"[{name}]" if ":" in name else name for name in self.allowed))
        body = json.dumps(
            {
                "detail": f"Host {header!r} is not a name of this API. Without API keys (EXECUTIONER_API_KEYS) it "
                f"answers only to {names} or an IP address (refusing DNS rebinding); add other names to "
                "EXECUTIONER_ALLOWED_HOSTS."
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
