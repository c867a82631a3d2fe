"""Run the operator: `executioner operator` (or `kopf run -m executioner.operator.handlers --all-namespaces`)."""

from __future__ import annotations

import os
import socket

import kopf

from executioner.logs import configure_logging
from executioner.settings import Settings


def run_operator(log_level: str = "INFO") -> int:
    import executioner.operator.handlers  # noqa: F401 - registers the handlers

    settings = Settings()
    configure_logging(log_level, settings.log_format)
    # Kopf would derive its identity from the user name, which a container's arbitrary UID does not have.
    identity = f"executioner-operator@{socket.gethostname()}/{os.getpid()}"
    kopf.run(
        clusterwide=True,
        standalone=True,
        identity=identity,  # type: ignore[arg-type]  # a NewType of str that kopf does not export
        liveness_endpoint=settings.operator_liveness_endpoint or None,
    )
    return 0
