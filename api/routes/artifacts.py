"""/v1/executions/{id}/artifacts/{path}: the files a program left under outputs/, served so that none can act in
the API's (and the web UI's) origin.

What a program writes is attacker-controlled, and its type is only guessed from its name. Raster images are sent as
images (a browser only ever decodes them). Everything else is an attachment (a download, never a page), sent as
application/octet-stream when a browser could render it as a document (HTML, SVG, XML, JavaScript...). Every answer
carries `X-Content-Type-Options: nosniff` and `Content-Security-Policy: default-src 'none'; sandbox`, so even a file
opened directly can run no script and load nothing.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Response, status

from executioner.api.deps import CurrentOwner, StoreDep
from executioner.files import INLINE_IMAGE_TYPES, content_type
from executioner.models import Execution
from executioner.store import ExecutionStore

router = APIRouter(prefix="/v1/executions", tags=["executions"])

ARTIFACT_CSP = "default-src 'none'; sandbox"
# Sent as their own type (still as attachments): formats no browser renders as a page.
DOWNLOAD_TYPES = frozenset(
    {
        "text/plain",
        "text/csv",
        "text/tab-separated-values",
        "application/json",
        "application/zip",
        "application/gzip",
        "application/x-tar",
    }
)
UNSAFE_FILENAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")


# What every artifact route answers alike (artifact_response); each adds how it authorises.
ARTIFACT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The artifact's bytes: a raster image inline as itself, anything else as an attachment",
        "content": {"image/png": {}, "application/octet-stream": {}},
    },
    410: {"description": "The execution's payload, artifacts included, was dropped (its retention passed)"},
}


def serving_headers(path: str) -> dict[str, str]:
    """How an artifact at `path` is sent: its Content-Type, Content-Disposition and the headers that keep it inert."""
    guessed = content_type(path)
    name = path.rsplit("/", 1)[-1]
    ascii_name = UNSAFE_FILENAME_CHARACTERS.sub("_", name).lstrip(".") or "artifact"
    filename = f"filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
    inline = guessed in INLINE_IMAGE_TYPES
    return {
        "content-type": guessed if inline or guessed in DOWNLOAD_TYPES else "application/octet-stream",
        "content-disposition": f"{'inline' if inline else 'attachment'}; {filename}",
        "x-content-type-options": "nosniff",
        "content-security-policy": ARTIFACT_CSP,
        "cross-origin-resource-policy": "same-origin",
        "cache-control": "private, no-store",
    }


@router.get(
    "/{execution_id}/artifacts/{path:path}",
    summary="Download one artifact (a file the program wrote under outputs/)",
    description=__doc__.split("\n\n", 1)[1],
    response_class=Response,
    responses={
        **ARTIFACT_RESPONSES,
        401: {"description": "Missing or unknown API key"},
        404: {"description": "No such execution (or it belongs to another key), or no such artifact"},
    },
)
def get_artifact(execution_id: str, path: str, store: StoreDep, owner: CurrentOwner) -> Response:
    execution = store.get(execution_id)
    if execution is None or execution.owner != owner:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"execution {execution_id} not found")
    return artifact_response(store, execution, path)


def artifact_response(store: ExecutionStore, execution: Execution, path: str) -> Response:
    """One artifact of an execution the caller may read: its bytes, sent inert; 410 once its retention passed, 404
    for a path it does not have."""
    gone = HTTPException(
        status.HTTP_410_GONE,
        f"the artifacts of execution {execution.id} were dropped with its code, input and output: their retention "
        "(EXECUTIONER_PAYLOAD_RETENTION_SECONDS) has passed",
    )
    if execution.payload_expired:
        raise gone
    if path not in {artifact.path for artifact in execution.artifacts}:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"execution {execution.id} has no artifact {path!r}")
    data = store.artifact(execution.id, path)
    if data is None:  # expired by itself, the sweeper not yet by
        raise gone
    return Response(data, headers=serving_headers(path))
