"""At-least-once delivery made exactly-once, lost workers, and load, with real Redis and Celery workers."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import redis

from executioner.models import Outcome, Status
from executioner.queue import QUEUE, waiting_message_ids
from executioner.settings import Settings
from executioner.worker.active import ActiveExecutions
from executioner.worker.executor import (
    LOST_WORKER_REASON,
    execute,
    redispatch_lost_messages,
    sweep_lost_executions,
)
from helpers.private import private_api
from helpers.programs import new_marker, processes_with, sleeper, wait_until
from helpers.records import new_record
from helpers.stack import kill_process_tree, start_worker, stop


class CountingBackend:
    name = "counting"

    def __init__(self):
        self.runs = 0

    def run(self, execution, output=None):
        self.runs += 1
        time.sleep(0.2)
        return Outcome(status=Status.succeeded, stdout="ran")

    def cancel(self, execution_id):
        pass

    def cleanup(self, execution_id):
        pass

    def recover(self, execution):
        return Outcome(status=Status.error, error=LOST_WORKER_REASON)


def test_a_duplicate_delivery_never_runs_code_twice(store):
    settings = Settings(lease_seconds=5)
    backend = CountingBackend()
    active = ActiveExecutions(store, backend, settings.lease_seconds)
    execution_id = new_record(store).id
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: execute(execution_id, store, backend, settings, active), range(4)))
    assert backend.runs == 1
    assert sorted(results) == ["duplicate", "duplicate", "duplicate", "succeeded"]
    assert execute(execution_id, store, backend, settings, active) == "already_final"
    assert backend.runs == 1


def test_a_redelivered_task_runs_once_on_the_real_worker(stack, api):
    """The same Celery message delivered twice (same task id) gives one run and one result."""
    from celery import Celery

    doc = api.post("/v1/executions", json={"code": "import time\ntime.sleep(1)\nprint('once')"}).json()
    sender = Celery(broker=stack.env["EXECUTIONER_REDIS_URL"])
    sender.send_task("executioner.run_execution", args=[doc["id"]], task_id=doc["id"], queue="executioner")
    final = api.get(f"/v1/executions/{doc['id']}", params={"wait": 20}).json()
    assert final["status"] == "succeeded" and final["stdout"] == "once\n"
    log = (stack.logs / "worker.log").read_text()
    assert wait_until(lambda: (stack.logs / "worker.log").read_text().count(f"execution {doc['id']} ended") == 1, 5)
    assert log.count(f"running execution {doc['id']}") == 1


def test_sweep_ignores_executions_with_a_live_lease(store):
    execution_id = new_record(store).id
    store.transition(execution_id, Status.running, lease_owner="alive", lease_seconds=30)
    assert execution_id not in sweep_lost_executions(store, CountingBackend())
    assert store.get(execution_id).status is Status.running
    store.finish(execution_id, Status.cancelled)


def test_a_worker_killed_mid_execution_ends_it_as_error(tmp_path):
    marker = new_marker("lost")
    with private_api(tmp_path, lease_seconds=2, sweep_interval_seconds=0.5) as client:
        env = client.env
        worker = start_worker(env, tmp_path / "worker-a.log", name="a")
        code = sleeper(marker)
        execution_id = client.post("/v1/executions", json={"code": code, "limits": {"timeout_seconds": 60}}).json()[
            "id"
        ]
        assert wait_until(lambda: client.get(f"/v1/executions/{execution_id}").json()["status"] == "running", 20)
        assert wait_until(lambda: processes_with(marker), 10)
        kill_process_tree(worker)
        # The sandbox dies with its worker...
        assert wait_until(lambda: not processes_with(marker), 5)
        assert client.get(f"/v1/executions/{execution_id}").json()["status"] == "running"
        # ...and a surviving (here: restarted) worker resolves it instead of leaving it running forever.
        replacement = start_worker(env, tmp_path / "worker-b.log", name="b")
        try:
            record = client.get(f"/v1/executions/{execution_id}", params={"wait": 20}).json()
            assert record["status"] == "error"
            assert record["error"] == LOST_WORKER_REASON
            assert record["finished_at"] is not None
            # The system still works afterwards.
            hello = client.post("/v1/executions", params={"wait": 20}, json={"code": "print('after')"}).json()
            assert hello["stdout"] == "after\n"
        finally:
            stop(replacement)


def test_fifty_concurrent_executions_reach_the_right_state(stack):
    cases = []
    for i in range(50):
        kind = i % 5
        if kind == 0:
            cases.append((f"print({i})", "", "succeeded", f"{i}\n"))
        elif kind == 1:
            cases.append((f"import sys\nprint({i})\nsys.exit({i % 7 + 1})", "", "failed", f"{i}\n"))
        elif kind == 2:
            cases.append((f"raise RuntimeError('case {i}')", "", "failed", ""))
        elif kind == 3:
            cases.append((f"import time\ntime.sleep(0.5)\nprint('slept {i}')", "", "succeeded", f"slept {i}\n"))
        else:
            cases.append(("print(input()[::-1])", f"hello{i}", "succeeded", f"hello{i}"[::-1] + "\n"))

    def run(case):
        code, stdin, _, _ = case
        with httpx.Client(base_url=stack.url, timeout=120) as client:
            doc = client.post("/v1/executions", params={"wait": 30}, json={"code": code, "stdin": stdin}).json()
            while doc["status"] in ("queued", "running"):
                doc = client.get(f"/v1/executions/{doc['id']}", params={"wait": 30}).json()
            return doc

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(run, cases))
    for (code, _, status, stdout), doc in zip(cases, results, strict=True):
        assert doc["status"] == status, (code, doc)
        assert doc["stdout"] == stdout, (code, doc)
        if "RuntimeError" in code:
            assert "RuntimeError: case" in doc["stderr"]


def test_a_queued_execution_whose_message_was_lost_is_sent_again(tmp_path):
    # Accepted, then its message gone (a Redis crash between a worker's take and its unacknowledged note, or a
    # worker that took it while Redis was away): the record still says queued, and nothing would ever run it.
    with private_api(tmp_path, sweep_interval_seconds=0.5, redispatch_after_seconds=2) as client:
        lost = client.post("/v1/executions", json={"code": "print('found again')"}).json()["id"]
        broker = redis.Redis.from_url(client.redis_url, decode_responses=True)
        assert waiting_message_ids(broker) == {lost}
        broker.delete(QUEUE)
        waiting = client.post("/v1/executions", json={"code": "print('never lost')"}).json()["id"]
        worker = start_worker(client.env, tmp_path / "worker.log")
        try:
            for execution_id, stdout in ((lost, "found again\n"), (waiting, "never lost\n")):
                record = client.get(f"/v1/executions/{execution_id}", params={"wait": 30}).json()
                assert (record["status"], record["stdout"]) == ("succeeded", stdout)
            log = (tmp_path / "worker.log").read_text()
            assert log.count(f"execution {lost} was queued but its message was lost; sent again") == 1
            assert log.count(f"running execution {lost}") == 1
            assert f"execution {waiting} was queued but its message was lost" not in log
        finally:
            stop(worker)
            broker.close()


def test_redispatch_leaves_waiting_messages_and_young_executions_alone(store):
    young = new_record(store).id
    sent: list[str] = []
    assert redispatch_lost_messages(store, sent.append, after_seconds=60) == []
    time.sleep(1.1)
    assert redispatch_lost_messages(store, sent.append, after_seconds=1) == [young] == sent
    # Workers sweeping together: the next one within the window does not send it a second time.
    assert redispatch_lost_messages(store, sent.append, after_seconds=1) == []
    store.finish(young, Status.cancelled)
