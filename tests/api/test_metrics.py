"""GET /metrics: what Prometheus scrapes, from a real API, worker and Redis."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from helpers.private import private_api
from helpers.programs import wait_until


def scrape(api) -> dict[str, dict[tuple, float]]:
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_describe_executions_timings_queue_store_and_refusals(tmp_path):
    with private_api(
        tmp_path, worker=True, rate_limit_per_minute=60, rate_limit_burst=3, redis_options=("--maxmemory", "64mb")
    ) as api:
        for code, status in (("print(1)", "succeeded"), ("raise SystemExit(3)", "failed")):
            assert api.post("/v1/executions", params={"wait": 20}, json={"code": code}).json()["status"] == status
        assert api.post("/v1/executions", json={"code": "print(2)"}).status_code == 202
        assert api.post("/v1/executions", json={"code": "print(3)"}).status_code == 429  # past the burst of 3
        # A run's timings are recorded just after its result, which a waiting request may see first.
        assert wait_until(
            lambda: scrape(api)["executioner_sandbox_start_seconds_count"].get((("backend", "local"),), 0) >= 2, 10
        )
        samples = scrape(api)
        executions = samples["executioner_executions_total"]
        assert executions[(("backend", "local"), ("status", "succeeded"))] >= 1
        assert executions[(("backend", "local"), ("status", "failed"))] == 1
        # Two runs finished and were timed (the third may still be running).
        assert samples["executioner_execution_duration_seconds_count"][(("backend", "local"),)] >= 2
        assert samples["executioner_sandbox_overhead_seconds_count"][(("backend", "local"),)] >= 2
        starts = samples["executioner_sandbox_start_seconds_count"][(("backend", "local"),)]
        assert starts >= 2
        # A local sandbox starts in tens of milliseconds: the mean is far below a second.
        assert 0 < samples["executioner_sandbox_start_seconds_sum"][(("backend", "local"),)] / starts < 1
        assert samples["executioner_queue_wait_seconds_bucket"][(("backend", "local"), ("le", "+Inf"))] >= 2
        assert samples["executioner_refusals_total"][(("reason", "rate_limit"),)] == 1
        assert samples["executioner_store_max_memory_bytes"][()] == 64 * 1024 * 1024
        assert 0 < samples["executioner_store_memory_bytes"][()] < 64 * 1024 * 1024
        assert samples["executioner_store_high_water_bytes"][()] == 0.8 * 64 * 1024 * 1024
        assert "executioner_queue_depth" in samples and "executioner_running" in samples
        assert samples["executioner_waiters"][()] == 0
