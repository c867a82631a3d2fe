"""The FastAPI application: builds the app and mounts the routers, nothing else."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import redis
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from executioner.admission import Admission
from executioner.api.kubernetes_access import KubernetesAccess
from executioner.api.metrics import ApiMetrics
from executioner.api.middleware import BodySizeLimit, HostAllowlist, SecurityHeaders, allowed_host_names
from executioner.api.routes import artifacts, events, execution_request_artifacts, health, metrics, runtimes
from executioner.api.routes.executions import executions_router
from executioner.events import ExecutionEvents
from executioner.files import MAX_PATH_BYTES
from executioner.kube import kubernetes_api_client
from executioner.logs import configure_logging
from executioner.queue import ExecutionQueue
from executioner.settings import Settings
from executioner.store import ExecutionStore
from executioner.submission import Submitter

log = logging.getLogger("executioner.api")
UI_DIR = Path(__file__).resolve().parents[1] / "frontend" / "dist"
# Blocking store calls (submission, listing, cancelling) run on threads; waiting (`?wait=`) holds none.
THREADS = 64


def document_open_access(app: FastAPI) -> None:
    """Without API keys nothing needs authorization: say so in the OpenAPI document too."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.get("components", {}).pop("securitySchemes", None)
            for operations in schema["paths"].values():
                for operation in operations.values():
                    operation.pop("security", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI documents replacing openapi() this way


DOCS_ASSETS = "/docs-assets"


def swagger_ui_assets() -> Path:
    """Swagger UI's JS, CSS and icon from the fastapi-swagger package (its own files, nothing fetched at run time)."""
    spec = importlib.util.find_spec("fastapi_swagger")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the fastapi-swagger package (Swagger UI's files) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "resources"


def mount_docs(app: FastAPI) -> None:
    """Swagger UI at /docs with every file from the API itself (air-gapped clusters reach no CDN), under a CSP that
    allows only those files and the page's one inline script (by its hash)."""
    assert app.openapi_url is not None
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        oauth2_redirect_url="/docs/oauth2-redirect",
        # no badge from the public validator service
        swagger_ui_parameters={"validatorUrl": None},
    ).body
    page = bytes(page)
    inline = [m.encode() for m in re.findall(r"<script>(.*?)</script>", page.decode(), re.S)]
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in inline)
    csp = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(page, headers={"content-security-policy": csp})

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_assets()), name="docs-assets")


def max_body_bytes(settings: Settings) -> int:
    """The largest body a valid request can have. JSON escaping can grow text up to six-fold (\\uXXXX); base64 only
    uses letters, digits, +, / and =, of which an encoder may escape / (two-fold); input files' paths are text."""
    text = settings.max_code_bytes + settings.max_stdin_bytes + settings.max_input_files * MAX_PATH_BYTES
    base64 = 4 * -(-settings.max_input_files_total_bytes // 3)
    return 6 * text + 2 * base64 + 65536  # and room for the rest of the document


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = THREADS
        if settings.log_format == "json":
            configure_logging(logging.getLevelName(logging.getLogger("uvicorn").getEffectiveLevel()), "json")
        await app.state.events.start()
        if not settings.api_keys:
            log.warning("EXECUTIONER_API_KEYS is empty: the API is open to anyone who can reach %s", settings.host)
        yield
        await app.state.events.close()
        app.state.submitter.queue.close()
        app.state.store.redis.close()

    app = FastAPI(
        title="THE_EXECUTIONER",
        summary="Run untrusted Python in disposable sandboxes; only the output comes back.",
        version="0.1.0",
        lifespan=lifespan,
        # served by mount_docs from the API's own files; no ReDoc, which only loads from a CDN
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = ExecutionStore.from_settings(settings)
    app.state.submitter = Submitter(
        app.state.store, ExecutionQueue(settings), settings, Admission(app.state.store, settings)
    )
    app.state.events = ExecutionEvents(settings.redis_url, settings.max_waiters_per_key)
    app.state.metrics = ApiMetrics(app.state.store, app.state.events, settings)

    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(executions_router(settings))
    app.include_router(events.router)
    app.include_router(artifacts.router)
    app.include_router(runtimes.router)
    if settings.kubernetes_artifact_access:  # the only route that talks to Kubernetes, and only when asked to
        app.state.kubernetes_access = KubernetesAccess(kubernetes_api_client(), settings.kubernetes_token_audiences)
        app.include_router(execution_request_artifacts.router)
    mount_docs(app)

    @app.exception_handler(redis.RedisError)
    async def store_unavailable(_request: Request, exc: redis.RedisError) -> JSONResponse:
        log.error("execution store error: %s", exc)
        return JSONResponse(
            {"detail": "the execution store is unavailable; try again"}, 503, headers={"Retry-After": "5"}
        )

    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes(settings))
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    if not settings.api_keys:
        app.add_middleware(HostAllowlist, allowed=allowed_host_names(settings.host, settings.allowed_hosts))
    app.add_middleware(SecurityHeaders)

    if not settings.api_keys:
        document_open_access(app)

    ui_dir = Path(settings.ui_dir) if settings.ui_dir else UI_DIR
    if ui_dir.is_dir():
        app.mount("/", StaticFiles(directory=ui_dir, html=True), name="ui")
    return app
