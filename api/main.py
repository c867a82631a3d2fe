"""The FastAPI application: builds the app and mounts the routers, nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import redis
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from executioner.admission import Admission
from executioner.api.metrics import ApiMetrics
from executioner.api.middleware import BodySizeLimit, SecurityHeaders
from executioner.api.routes import health, metrics
from executioner.api.routes.executions import executions_router
from executioner.events import ExecutionEvents
from executioner.logs import configure_logging
from executioner.queue import ExecutionQueue
from executioner.settings import Settings
from executioner.store import ExecutionStore

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
        app.state.queue.close()
        app.state.store.redis.close()

    app = FastAPI(
        title="THE_EXECUTIONER",
        summary="Run untrusted Python in disposable sandboxes; only the output comes back.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = ExecutionStore.from_settings(settings)
    app.state.admission = Admission(app.state.store, settings)
    app.state.queue = ExecutionQueue(settings)
    app.state.events = ExecutionEvents(settings.redis_url, settings.max_waiters_per_key)
    app.state.metrics = ApiMetrics(app.state.store, app.state.events, settings)

    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(executions_router(settings))

    @app.exception_handler(redis.RedisError)
    async def store_unavailable(_request: Request, exc: redis.RedisError) -> JSONResponse:
        log.error("execution store error: %s", exc)
        return JSONResponse(
            {"detail": "the execution store is unavailable; try again"}, 503, headers={"Retry-After": "5"}
        )

    # JSON escaping can grow a body up to six-fold; anything larger cannot be a valid request.
    app.add_middleware(BodySizeLimit, max_bytes=6 * (settings.max_code_bytes + settings.max_stdin_bytes) + 65536)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(SecurityHeaders)

    if not settings.api_keys:
        document_open_access(app)

    ui_dir = Path(settings.ui_dir) if settings.ui_dir else UI_DIR
    if ui_dir.is_dir():
        app.mount("/", StaticFiles(directory=ui_dir, html=True), name="ui")
    return app
