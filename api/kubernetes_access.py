"""Delegated authentication and authorization for kubectl users (kube-rbac-proxy's pattern): the Kubernetes API
says who a bearer token is (TokenReview) and whether that user may get an ExecutionRequest (SubjectAccessReview), so
Kubernetes RBAC decides who may read an ExecutionRequest's artifacts, as it decides who may read its status.

The review bodies and the reading of their answers are pure functions (unit-tested); `KubernetesAccess` only sends
them. Every failure closes: a review that cannot be made refuses the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from executioner.execution_requests import GROUP, PLURAL, VERSION, belongs_to
from executioner.models import Execution

# Each call to the Kubernetes API: a slow one fails the request (503) rather than holding a thread.
REQUEST_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class KubernetesUser:
    """Who a token is, as a TokenReview says; a SubjectAccessReview asks about exactly this user."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)


def token_review(token: str, audiences: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"token": token}
    if audiences:
        spec["audiences"] = list(audiences)
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}


def reviewed_user(review: dict[str, Any], audiences: list[str]) -> KubernetesUser | None:
    """The user a TokenReview's answer authenticates, or None: not authenticated, no user name, or (when the API
    asked for audiences) none of them in the answer."""
    status = review.get("status") or {}
    user = status.get("user") or {}
    if status.get("authenticated") is not True or not user.get("username"):
        return None
    if audiences and not set(audiences) & set(status.get("audiences") or []):
        return None
    return KubernetesUser(
        username=user["username"],
        uid=user.get("uid") or "",
        groups=tuple(user.get("groups") or ()),
        extra={key: list(values) for key, values in (user.get("extra") or {}).items()},
    )


def access_review(user: KubernetesUser, namespace: str, name: str) -> dict[str, Any]:
    """May `user` get the ExecutionRequest `name` in `namespace`? (The SubjectAccessReview kubectl get would need.)"""
    spec: dict[str, Any] = {
        "user": user.username,
        "groups": list(user.groups),
        "resourceAttributes": {
            "namespace": namespace,
            "verb": "get",
            "group": GROUP,
            "version": VERSION,
            "resource": PLURAL,
            "name": name,
        },
    }
    if user.uid:
        spec["uid"] = user.uid
    if user.extra:
        spec["extra"] = user.extra
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


def access_allowed(review: dict[str, Any]) -> bool:
    status = review.get("status") or {}
    return status.get("allowed") is True and status.get("denied") is not True


def execution_id_of(resource: dict[str, Any]) -> str | None:
    """The execution an ExecutionRequest names in its status (only a claim: check it with `is_execution_of`)."""
    execution_id = (resource.get("status") or {}).get("executionId")
    return execution_id if isinstance(execution_id, str) and execution_id else None


def is_execution_of(execution: Execution, resource: dict[str, Any]) -> bool:
    """Whether the record was submitted by this very resource (its namespace and uid), as the operator checks before
    acting on status.executionId: whoever may patch one resource's status cannot point it at another's execution."""
    meta = resource.get("metadata") or {}
    return belongs_to(execution, meta.get("namespace"), meta.get("uid"))


class KubernetesUnavailable(Exception):
    """A review or read the API needs could not be made."""


class KubernetesAccess:
    """The three calls: who is this token, may they get this ExecutionRequest, and the ExecutionRequest itself."""

    def __init__(self, api_client: client.ApiClient, audiences: list[str]) -> None:
        self.api_client = api_client
        self.audiences = audiences

    def _answer(self, call: Any, *args: Any) -> dict[str, Any]:
        try:
            answer = call(*args, _request_timeout=REQUEST_TIMEOUT_SECONDS)
        except ApiException as exc:
            raise KubernetesUnavailable(f"{exc.status} {exc.reason}") from exc
        except Exception as exc:  # connection refused, timeouts, TLS: the review is not made, so nothing is served
            raise KubernetesUnavailable(str(exc)) from exc
        document: dict[str, Any] = self.api_client.sanitize_for_serialization(answer)
        return document

    def authenticate(self, token: str) -> KubernetesUser | None:
        api = client.AuthenticationV1Api(self.api_client)
        return reviewed_user(self._answer(api.create_token_review, token_review(token, self.audiences)), self.audiences)

    def may_get(self, user: KubernetesUser, namespace: str, name: str) -> bool:
        api = client.AuthorizationV1Api(self.api_client)
        return access_allowed(self._answer(api.create_subject_access_review, access_review(user, namespace, name)))

    def execution_request(self, namespace: str, name: str) -> dict[str, Any] | None:
        api = client.CustomObjectsApi(self.api_client)
        try:
            resource: dict[str, Any] = api.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise KubernetesUnavailable(f"{exc.status} {exc.reason}") from exc
        except Exception as exc:
            raise KubernetesUnavailable(str(exc)) from exc
        return resource
