"""The workers' Celery app: what `executioner worker` (and `celery -A executioner.worker.celery_app worker`) runs.

Importing it reads no settings: the configuration is a promise Celery resolves when it first needs it,
so tests and tools can import the tasks without an environment.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals

from executioner.logs import configure_logging
from executioner.queue import celery_config
from executioner.settings import Settings

app = Celery("executioner")
app.add_defaults(lambda: celery_config(Settings()))
app.conf.imports = ["executioner.worker.tasks"]


@signals.setup_logging.connect
def setup_logging(loglevel: str | int = "INFO", **_: Any) -> None:
    """The project's log format (EXECUTIONER_LOG_FORMAT) instead of Celery's own."""
    configure_logging(logging.getLevelName(loglevel) if isinstance(loglevel, int) else loglevel, Settings().log_format)
