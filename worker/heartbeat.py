"""A heartbeat file for the worker's liveness probe (EXECUTIONER_WORKER_HEARTBEAT_FILE).

The Celery consumer's own timer touches the file, so it stays fresh only while the consumer's event loop turns:
a loop that hangs, or a consumer that lost the broker and is stuck reconnecting, lets it go stale and the probe
(the chart's: the file's age) restarts the pod. A thread of its own would keep beating through both.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from celery import bootsteps

from executioner.settings import Settings

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 10.0


def beat(path: Path) -> None:
    try:
        path.touch()
        os.utime(path)  # touch() leaves an existing file's time alone on some filesystems
    except OSError as exc:
        log.warning("cannot write the heartbeat file %s: %s", path, exc)


class Heartbeat(bootsteps.StartStopStep):
    """Runs once the consumer has connected and started consuming; stops with it."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        super().__init__(consumer, **kwargs)
        path = Settings().worker_heartbeat_file
        self.path = Path(path) if path else None
        self.entry: Any = None

    def start(self, consumer: Any) -> None:
        if self.path is None:
            return
        beat(self.path)
        self.entry = consumer.timer.call_repeatedly(INTERVAL_SECONDS, beat, (self.path,))

    def stop(self, consumer: Any) -> None:
        if self.entry is not None:
            self.entry.cancel()
            self.entry = None

    shutdown = stop
