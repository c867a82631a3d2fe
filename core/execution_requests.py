"""The ExecutionRequest resource: its names, how its execution is filed, and where the API serves its artifacts.

Shared by the operator (which submits an ExecutionRequest's execution and mirrors it into the status) and the API
(which serves that execution's artifacts to whoever Kubernetes RBAC lets read the resource). No client here: the
chart's uninstall hook imports these names too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from executioner.models import Execution

GROUP, VERSION, PLURAL = "executioner.dev", "v1alpha1", "executionrequests"


def owner_of(namespace: str | None) -> str:
    """ExecutionRequests are filed by namespace: each namespace has a key's rate limit, active cap and byte budget."""
    return f"k8s:{namespace}"


def belongs_to(execution: Execution, namespace: str | None, uid: str | None) -> bool:
    """Whether the execution was submitted by this resource: status.executionId is only as trustworthy as whoever
    may patch the status, so the record itself must name the resource."""
    return execution.owner == owner_of(namespace) and execution.source is not None and execution.source == uid


def artifact_api_path(namespace: str | None, name: str, path: str) -> str:
    """Where the API serves one artifact of an ExecutionRequest's execution (to a Kubernetes token allowed to get
    the resource)."""
    return f"/v1/{PLURAL}/{quote(str(namespace), safe='')}/{quote(name, safe='')}/artifacts/{quote(path)}"
