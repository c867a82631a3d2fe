"""The API's /metrics registry: the deployment-wide figures from the store, plus what this API process refuses."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from executioner.events import ExecutionEvents
from executioner.metrics import DeploymentCollector
from executioner.settings import Settings
from executioner.store import ExecutionStore


class ApiMetrics:
    def __init__(self, store: ExecutionStore, events: ExecutionEvents, settings: Settings):
        # A registry per app, not the process-wide default: tests build many apps in one process.
        self.registry = CollectorRegistry()
        self.registry.register(DeploymentCollector(store, settings.store_high_water_ratio, settings.store_max_bytes))
        self.refusals = Counter(
            "executioner_refusals",
            "Submissions and waits this API refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        waiters = Gauge("executioner_waiters", "Requests waiting for a result here.", registry=self.registry)
        waiters.set_function(lambda: events.waiting)

    def refused(self, reason: str) -> None:
        self.refusals.labels(reason).inc()
