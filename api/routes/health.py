from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from executioner.api.deps import SettingsDep, StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness and store reachability")
def healthz(store: StoreDep, settings: SettingsDep) -> JSONResponse:
    try:
        store.ping()
    except Exception:  # noqa: BLE001 - any store failure means not healthy
        return JSONResponse({"status": "unavailable", "backend": settings.backend, "store": "unreachable"}, 503)
    return JSONResponse({"status": "ok", "backend": settings.backend, "store": "ok"})
