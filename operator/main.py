"""Run the operator: `executioner operator` (or `kopf run -m executioner.operator.handlers --all-namespaces`)."""

from __future__ import annotations

import logging

import kopf


def run_operator(log_level: str = "INFO") -> int:
    import executioner.operator.handlers  # noqa: F401 - registers the handlers

    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kopf.run(clusterwide=True, standalone=True)
    return 0
