"""/v1/runtimes: the runtimes this deployment offers, with their Python and pinned packages."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from executioner.api.deps import CurrentOwner, SettingsDep
from executioner.runtimes import DEFAULT_RUNTIME, PYTHON_VERSION, RUNTIMES

router = APIRouter(prefix="/v1/runtimes", tags=["runtimes"])


class Package(BaseModel):
    name: str
    version: str


class RuntimePublic(BaseModel):
    """A runtime an execution can ask for in its `runtime` field."""

    name: str
    description: str
    python_version: str = Field(description="The sandbox's Python, major.minor.")
    packages: list[Package] = Field(description="Every pinned package, dependencies included; empty: stdlib only.")
    default: bool = Field(description="Used when a request names no runtime.")


@router.get(
    "",
    response_model=list[RuntimePublic],
    summary="List the runtimes offered: their Python and pinned packages",
    responses={401: {"description": "Missing or unknown API key"}},
)
def list_runtimes(settings: SettingsDep, _owner: CurrentOwner) -> list[RuntimePublic]:
    return [
        RuntimePublic(
            name=name,
            description=RUNTIMES[name].description,
            python_version=PYTHON_VERSION,
            packages=[Package(name=package, version=version) for package, version in RUNTIMES[name].packages],
            default=name == DEFAULT_RUNTIME,
        )
        for name in settings.runtimes
    ]
