"""Prometheus metrics that describe the whole deployment, whichever process did the work.

Workers, the API and the operator are separate processes (and pods), so what they count lives in Redis:
the store's transition script counts every terminal status, and the worker adds each run's timings to
histogram buckets. Any API process exposes the lot at `GET /metrics`, with the store's gauges read at scrape time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any, cast

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from executioner.store import METRICS_KEY, ExecutionStore

# Seconds; from a hello world (tens of ms) to the longest time limit.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
HISTOGRAMS = {
    "execution_duration_seconds": "How long programs ran, as the runner measured it.",
    "queue_wait_seconds": "From acceptance until a worker started the execution.",
    "sandbox_start_seconds": "From a worker asking for a sandbox until the program in it started.",
    "sandbox_overhead_seconds": "A run's time outside the program: starting and tearing down its sandbox.",
}
SEPARATOR = "|"


def record_run(client: redis.Redis, backend: str, timings: dict[str, float]) -> None:
    """Add one finished run's timings (histogram name -> seconds) to the shared buckets."""
    with client.pipeline(transaction=False) as pipe:
        for name, seconds in timings.items():
            if seconds < 0:
                continue
            for bound in BUCKETS:
                if seconds <= bound:
                    pipe.hincrby(METRICS_KEY, SEPARATOR.join((name, backend, "bucket", f"{bound:g}")), 1)
            pipe.hincrby(METRICS_KEY, SEPARATOR.join((name, backend, "count")), 1)
            pipe.hincrbyfloat(METRICS_KEY, SEPARATOR.join((name, backend, "sum")), seconds)
        pipe.execute()


class DeploymentCollector(Collector):
    """Reads the shared counters and the store's state at each scrape."""

    def __init__(self, store: ExecutionStore, high_water_ratio: float, max_bytes: int):
        self.store = store
        self.high_water_ratio = high_water_ratio
        self.max_bytes = max_bytes

    def collect(self) -> Iterator[Metric]:
        fields = cast(dict[str, str], self.store.redis.hgetall(METRICS_KEY))
        executions = CounterMetricFamily(
            "executioner_executions", "Executions that reached a terminal status.", labels=["status", "backend"]
        )
        histograms: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
        for field, value in fields.items():
            parts = field.split(SEPARATOR)
            if parts[0] == "executions_total" and len(parts) == 3:
                executions.add_metric(parts[1:], float(value))
            elif parts[0] in HISTOGRAMS and len(parts) >= 3:
                series = histograms[parts[0]][parts[1]]
                if parts[2] == "bucket":
                    series.setdefault("buckets", {})[float(parts[3])] = int(value)
                else:
                    series[parts[2]] = float(value)
        yield executions
        for name, help_text in HISTOGRAMS.items():
            family = HistogramMetricFamily(f"executioner_{name}", help_text, labels=["backend"])
            for backend, series in histograms[name].items():
                counts = series.get("buckets", {})
                buckets = [(f"{bound:g}", counts.get(bound, 0)) for bound in BUCKETS]
                buckets.append(("+Inf", int(series.get("count", 0))))
                family.add_metric([backend], buckets, series.get("sum", 0.0))
            yield family
        running = len(self.store.running_ids())
        yield GaugeMetricFamily(
            "executioner_queue_depth", "Executions waiting for a worker.", value=self.store.count_queued()
        )
        yield GaugeMetricFamily("executioner_running", "Executions running now.", value=running)
        used, maximum = self.store.memory()
        limit = maximum or self.max_bytes
        yield GaugeMetricFamily("executioner_store_memory_bytes", "Memory the store (Redis) uses.", value=used)
        yield GaugeMetricFamily(
            "executioner_store_max_memory_bytes", "The store's memory bound (0: none).", value=limit
        )
        yield GaugeMetricFamily(
            "executioner_store_high_water_bytes",
            "Above this the API refuses new executions (503).",
            value=self.high_water_ratio * limit,
        )
