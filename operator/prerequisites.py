"""What `EXECUTIONER_BACKEND=kubernetes make up` needs in the cluster, created from manifests/ when absent:
the CRD, and the sandbox namespace with its deny-all NetworkPolicy (plus its quota and limits).

manifests/ is the chart's render, so its objects say `app.kubernetes.io/managed-by: Helm`; no Helm release owns
what this module creates, though, so each object is labelled `app.kubernetes.io/managed-by: executioner-up`
instead. That label is what lets a later `make chart-install` take them over (hack/chart/adopt-make-up-objects.sh
gives exactly those objects to the release; anything else in the way stays untouched and stops the install).
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml
from kubernetes import client, utils
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)
MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"
CLUSTER_PREREQUISITES = ("crd.yaml", "sandbox-namespace.yaml")
MANAGED_BY = "app.kubernetes.io/managed-by"
# The mark of an object `make up` created (and hack/chart/adopt-make-up-objects.sh may hand to a Helm release).
MANAGED_BY_UP = "executioner-up"


def ensure_prerequisites(
    api_client: client.ApiClient, sandbox_namespace: str, manifests: Path = MANIFESTS
) -> list[str]:
    """Create each object of the prerequisite manifests that does not exist yet; returns what was created."""
    created = []
    for name in CLUSTER_PREREQUISITES:
        for document in yaml.safe_load_all((manifests / name).read_text()):
            if not document:
                continue
            metadata = document["metadata"]
            # The manifests name the default sandbox namespace; follow the configured one.
            if document["kind"] == "Namespace" and metadata["name"] == "executioner-sandbox":
                metadata["name"] = sandbox_namespace
            elif metadata.get("namespace") == "executioner-sandbox":
                metadata["namespace"] = sandbox_namespace
            metadata.setdefault("labels", {})[MANAGED_BY] = MANAGED_BY_UP
            try:
                utils.create_from_dict(api_client, document)
            except utils.FailToCreateError as exc:
                if all(isinstance(e, ApiException) and e.status == 409 for e in exc.api_exceptions):
                    continue  # already there: leave it as the cluster's owner configured it
                raise
            created.append(f"{document['kind']}/{metadata['name']}")
            log.info("created %s/%s from manifests/%s", document["kind"], metadata["name"], name)
    return created
