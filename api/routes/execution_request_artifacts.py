"""/v1/executionrequests/{namespace}/{name}/artifacts/{path}: an ExecutionRequest's artifacts for kubectl users,
Kubernetes RBAC deciding who may read them (on with EXECUTIONER_KUBERNETES_ARTIFACT_ACCESS).

Send a Kubernetes token, not an API key: `Authorization: Bearer $(kubectl create token SA --audience executioner)`.
401 when the Kubernetes API does not authenticate it (with the audiences EXECUTIONER_KUBERNETES_TOKEN_AUDIENCES);
403 when its user may not `get` that ExecutionRequest (asked before anything is looked up, so a 403 says nothing about
whether the resource exists; `kubectl auth can-i` tells the same to anyone); 404 when there is no such resource, it
has no execution yet, its status names an execution it did not submit, or that execution has no such artifact; 410
once the artifacts' retention passed; 503 when the Kubernetes API cannot be asked. The bytes are sent exactly as
/v1/executions/{id}/artifacts/{path} sends them.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from executioner.api.deps import SettingsDep, StoreDep, matching_key
from executioner.api.kubernetes_access import (
    KubernetesAccess,
    KubernetesUnavailable,
    execution_id_of,
    is_execution_of,
)
from executioner.api.routes.artifacts import ARTIFACT_RESPONSES, artifact_response

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/executionrequests", tags=["executionrequests"])
kubernetes_token = HTTPBearer(
    auto_error=False,
    scheme_name="KubernetesToken",
    description="A Kubernetes bearer token (kubectl create token SA --audience executioner), not an API key.",
)


def get_kubernetes_access(request: Request) -> KubernetesAccess:
    access: KubernetesAccess = request.app.state.kubernetes_access
    return access


KubernetesAccessDep = Annotated[KubernetesAccess, Depends(get_kubernetes_access)]
KubernetesToken = Annotated[HTTPAuthorizationCredentials | None, Depends(kubernetes_token)]


@router.get(
    "/{namespace}/{name}/artifacts/{path:path}",
    summary="Download one artifact of an ExecutionRequest's execution, with a Kubernetes token",
    description=__doc__.split("\n\n", 1)[1],
    response_class=Response,
    responses={
        **ARTIFACT_RESPONSES,
        401: {"description": "No Kubernetes token, or one the Kubernetes API does not authenticate"},
        403: {"description": "The token's user may not get this ExecutionRequest"},
        404: {"description": "No such ExecutionRequest, no execution of its own yet, or no such artifact"},
        503: {"description": "The Kubernetes API could not be asked"},
    },
)
def get_execution_request_artifact(
    namespace: str,
    name: str,
    path: str,
    settings: SettingsDep,
    store: StoreDep,
    access: KubernetesAccessDep,
    token: KubernetesToken,
) -> Response:
    audience = "".join(f" --audience {a}" for a in settings.kubernetes_token_audiences[:1])
    unauthenticated = HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "a Kubernetes token is required: send 'Authorization: Bearer <token>' with a token from "
        f"'kubectl create token SERVICEACCOUNT{audience}'",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if token is None or matching_key(settings, token.credentials):  # an API key is never sent on to Kubernetes
        raise unauthenticated
    try:
        user = access.authenticate(token.credentials)
        if user is None:
            raise unauthenticated
        if not access.may_get(user, namespace, name):
            log.info("refused %s the artifacts of executionrequest %s/%s", user.username, namespace, name)
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"{user.username} may not get executionrequest {name} in {namespace}"
            )
        resource = access.execution_request(namespace, name)
    except KubernetesUnavailable as exc:
        log.error("the Kubernetes API could not review a request for %s/%s: %s", namespace, name, exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the Kubernetes API could not be asked; try again",
            headers={"Retry-After": "5"},
        ) from exc
    execution_id = execution_id_of(resource) if resource else None
    execution = store.get(execution_id) if execution_id else None
    if resource is None or execution is None or not is_execution_of(execution, resource):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"executionrequest {namespace}/{name} not found, or it has no execution yet"
        )
    return artifact_response(store, execution, path)
