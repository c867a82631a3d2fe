"""EXECUTIONER_LOG_FORMAT=json: each log event is one JSON object per line, carrying the execution id."""

from __future__ import annotations

import json

from helpers.private import private_api


def json_events(path) -> list[dict]:
    events = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))  # a line that looks like JSON must be JSON
    return events


def test_worker_and_api_log_json_with_the_execution_id(tmp_path):
    with private_api(tmp_path, worker=True, log_format="json") as api:
        doc = api.post("/v1/executions", params={"wait": 20}, json={"code": "print('logged')"}).json()
        assert doc["status"] == "succeeded"
    worker = json_events(tmp_path / "worker.log")
    about_it = [event for event in worker if event.get("execution_id") == doc["id"]]
    assert [event["message"].split()[0] for event in about_it] == ["running", "execution"]
    assert about_it[-1]["status"] == "succeeded"
    assert {"time", "level", "logger", "message"} <= set(about_it[0])
    assert any(event["logger"].startswith("celery") for event in worker)  # Celery's own events too
    api_events = json_events(tmp_path / "api.log")
    assert any("Application startup complete" in event["message"] for event in api_events)
