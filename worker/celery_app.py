"""The workers' Celery app: what `executioner worker` (and `celery -A executioner.worker.celery_app worker`) runs.

Importing it reads no settings: the configuration is a promise Celery resolves when it first needs it,
so tests and tools can import the tasks without an environment.
"""

from __future__ import annotations

from celery import Celery

from executioner.queue import celery_config
from executioner.settings import Settings

app = Celery("executioner")
app.add_defaults(lambda: celery_config(Settings()))
app.conf.imports = ["executioner.worker.tasks"]
