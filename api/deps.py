"""Dependencies shared by the routes, as Annotated aliases."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from executioner.api.metrics import ApiMetrics
from executioner.events import ExecutionEvents
from executioner.settings import Settings
from executioner.store import ExecutionStore
from executioner.submission import Submitter

ANONYMOUS = "anonymous"
bearer = HTTPBearer(auto_error=False, description="An API key from EXECUTIONER_API_KEYS.")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ExecutionStore:
    return request.app.state.store


def get_submitter(request: Request) -> Submitter:
    return request.app.state.submitter


def get_metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics


def get_events(request: Request) -> ExecutionEvents:
    return request.app.state.events


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ExecutionStore, Depends(get_store)]
SubmitterDep = Annotated[Submitter, Depends(get_submitter)]
EventsDep = Annotated[ExecutionEvents, Depends(get_events)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]


def owner_of_key(key: str) -> str:
    """The identity records are filed under: a digest, so keys are never stored."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def matching_key(settings: Settings, presented: str) -> str | None:
    """The API key `presented` is, or None."""
    matched = None
    for key in settings.api_keys:  # compare with every key, in constant time
        if hmac.compare_digest(presented.encode(), key.encode()):
            matched = key
    return matched


def current_owner(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    if not settings.api_keys:
        return ANONYMOUS
    matched = matching_key(settings, credentials.credentials if credentials else "")
    if matched is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid API key is required: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return owner_of_key(matched)


CurrentOwner = Annotated[str, Depends(current_owner)]
