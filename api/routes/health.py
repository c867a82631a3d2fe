from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from executioner.api.deps import SettingsDep, StoreDep

router = APIRouter(tags=["health"])


@router.get("/livez", summary="Liveness: the API process answers (touches nothing else)")
def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/healthz", summary="Readiness: the API answers and reaches its store")
def healthz(store: StoreDep, settings: SettingsDep) -> JSONResponse:
    try:
        store.ping()
    except Exception:  # noqa: BLE001 - any store failure means not healthy
        return JSONResponse({"status": "unavailable", "backend": settings.backend, "store": "unreachable"}, 503)
    return JSONResponse({"status": "ok", "backend": settings.backend, "store": "ok"})
