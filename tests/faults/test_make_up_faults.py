"""`executioner up` (what `make up` runs) loses nothing when one of its parts is killed with SIGKILL, or when it is
stopped and started again: real redis-server, worker, API and bubblewrap sandboxes.

How a double run would show: a worker runs a sandbox only after it has claimed the execution, that is, after its
compare-and-set from `queued` to `running` succeeded, and it logs "running execution <id>" between the claim and
the sandbox (worker/executor.py). Every child's output goes to `up`'s log, so the number of those lines for an id is
the number of times it was claimed, i.e. the number of sandboxes that could have run its code (a claim whose worker
died before its sandbox started counts too: the check errs on the side of seeing a duplicate). An execution run
twice (a lost write putting it back to `queued`, a message delivered twice while nobody held the record) has two.

Counts per fault are printed (pytest -s) and written to test-artifacts/faults-make-up.txt.
"""

from __future__ import annotations

import signal
import time

import pytest

from executioner.cli import free_port
from executioner.worker.backends.base import LOST_WORKER_REASON
from helpers.faults import (
    Tally,
    Up,
    Workload,
    documents,
    mixed_programs,
    request,
    tally,
    up_environment,
    wait_until_final,
)

# Short leases and sweeps so work lost with a worker resolves within seconds.
FAST = {"worker_concurrency": 4, "lease_seconds": 3, "sweep_interval_seconds": 1, "grace_seconds": 5}
COMPONENTS = ["worker", "api", "redis"]


@pytest.fixture(scope="module")
def tallies(artifacts):
    found: list[Tally] = []
    yield found
    text = "kill -9 of one part of `executioner up` while 50 executions are submitted and running\n"
    text += "".join(f"{result.line()}\n" for result in found)
    (artifacts / "faults-make-up.txt").write_text(text)
    print("\n" + text)


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_killed_part_is_restarted_and_nothing_accepted_is_lost_or_run_twice(component, tmp_path, tallies):
    up = Up(up_environment(tmp_path / "state", free_port(), **FAST), tmp_path / "up.log").wait_until_serving()
    workload = None
    try:
        workload = Workload(up.url, mixed_programs(50, component))
        # Kill while work is in flight: some executions accepted, some running, more being submitted.
        deadline = time.monotonic() + 60
        while not (len(workload.accepted) >= 15 and len(up.claims()) - len(up.ended()) >= 2):
            assert time.monotonic() < deadline, f"never 15 accepted and 2 running:\n{up.tail()}"
            time.sleep(0.02)
        before = up.children()
        assert set(before) == {"redis", "worker", "api"}, before
        pid, killed_at = up.kill(component)
        killed = time.monotonic()
        claimed_before, ended_before = set(up.claims(0, killed_at)), set(up.ended(0, killed_at))

        # The supervisor says what happened and starts it again; the other parts were left alone.
        up.wait_for_output(f"executioner: {component} (pid {pid}) killed by SIGKILL", 10)
        up.wait_for_output(f"executioner: {component} restarted (pid", 30)
        after = up.children()
        assert after[component] != pid
        assert {k: v for k, v in after.items() if k != component} == {k: v for k, v in before.items() if k != component}

        workload.wait()
        accepted = workload.accepted
        ids = [program.id for program in accepted]
        final = wait_until_final(up.url, ids, seconds=120)
        result = tally(component, accepted, final, up.claims())
        result.refused_attempts = workload.refused
        result.seconds_to_settle = time.monotonic() - killed
        tallies.append(result)
        print(f"\n{result.line()}")
        for execution_id in result.error_with_reason:
            print(f"  {execution_id}: error: {final[execution_id]['error']}")

        assert len(accepted) == 50, "every client retries until its program is accepted"
        assert result.lost == [], f"accepted, then gone: {result.lost}"
        assert result.duplicated == [], f"claimed more than once: {result.duplicated}\n{up.tail()}"
        assert result.stuck == [], f"not final 120 s later: {[(i, final[i]['status']) for i in result.stuck]}"
        assert result.wrong == [], f"wrong outcome: {[final[i] for i in result.wrong]}"
        assert result.succeeded + len(result.error_with_reason) == 50

        # What was waiting when the part died ran afterwards, exactly once, with its real output.
        queued_at_kill = [p for p in accepted if p.accepted_at < killed and p.id not in claimed_before]
        assert queued_at_kill, "nothing accepted was waiting when the part died"
        for program in queued_at_kill:
            doc = final[program.id]
            assert (doc["status"], doc["stdout"]) == ("succeeded", program.stdout), doc
        # What was running ends with its real output or `error` and a reason, never stuck `running`.
        running_at_kill = [p for p in accepted if p.id in claimed_before - ended_before]
        print(f"  at the kill: {len(queued_at_kill)} accepted and waiting, {len(running_at_kill)} running")
        assert running_at_kill, "the kill came when nothing was running"
        for program in running_at_kill:
            doc = final[program.id]
            assert (doc["status"], doc["stdout"]) == ("succeeded", program.stdout) or (
                doc["status"] == "error" and doc["error"]
            ), doc
            if component == "worker" and doc["status"] == "error":  # its sandbox died with the worker
                assert doc["error"] == LOST_WORKER_REASON, doc
        if component == "worker":
            assert result.error_with_reason, "a worker killed mid-run lost nothing it was running?"
        if component == "api":  # executions never depended on the API once accepted
            assert result.error_with_reason == []

        # Final documents stay readable and stay the same.
        assert documents(up.url, ids) == final
        # The stack keeps serving.
        hello = request("POST", f"{up.url}/v1/executions", params={"wait": 30}, json={"code": "print('hello')"})
        assert (hello.status_code, hello.json()["stdout"]) == (200, "hello\n"), hello.text
    finally:
        if workload:
            workload.close()
        status = up.stop(signal.SIGINT)
    assert status == 0, up.tail()
    assert up.leftovers() == ""


def test_history_and_queued_work_survive_a_restart(tmp_path):
    """Stop `up` with Ctrl-C (SIGINT) while one execution runs and one waits, start it again on the same state dir:
    the finished ones read back unchanged, the running one finished during the clean stop, the waiting one runs
    after the restart, exactly once. One execution at a time, so the last one is surely still queued at the stop."""
    env = up_environment(tmp_path / "state", free_port(), **{**FAST, "worker_concurrency": 1})
    first = Up(env, tmp_path / "up-1.log").wait_until_serving()
    try:
        finished = [
            request("POST", f"{first.url}/v1/executions", params={"wait": 30}, json={"code": f"print({i} * 7)"}).json()
            for i in range(3)
        ]
        assert [(doc["status"], doc["stdout"]) for doc in finished] == [("succeeded", f"{i * 7}\n") for i in range(3)]
        running = request(
            "POST",
            f"{first.url}/v1/executions",
            json={"code": "import time\ntime.sleep(3)\nprint('ran through the stop')"},
        ).json()
        deadline = time.monotonic() + 30
        while running["id"] not in first.claims():
            assert time.monotonic() < deadline, first.tail()
            time.sleep(0.05)
        queued = request("POST", f"{first.url}/v1/executions", json={"code": "print('ran after the restart')"}).json()
        assert request("GET", f"{first.url}/v1/executions/{queued['id']}").json()["status"] == "queued"
    finally:
        status = first.stop(signal.SIGINT)
    assert status == 0, first.tail()
    assert first.leftovers() == ""
    assert "executioner: SIGINT received; stopping" in first.output()

    second = Up(env, tmp_path / "up-2.log").wait_until_serving()
    try:
        for doc in finished:
            assert request("GET", f"{second.url}/v1/executions/{doc['id']}").json() == doc
        listed = [
            doc["id"] for doc in request("GET", f"{second.url}/v1/executions", params={"limit": 10}).json()["items"]
        ]
        assert {doc["id"] for doc in finished} <= set(listed)
        done = request("GET", f"{second.url}/v1/executions/{running['id']}").json()
        assert (done["status"], done["stdout"]) == ("succeeded", "ran through the stop\n"), done
        after = request("GET", f"{second.url}/v1/executions/{queued['id']}", params={"wait": 30}).json()
        assert (after["status"], after["stdout"]) == ("succeeded", "ran after the restart\n"), after
        assert first.claims().count(queued["id"]) + second.claims().count(queued["id"]) == 1
        assert first.claims().count(running["id"]) + second.claims().count(running["id"]) == 1
        # The same private Redis, on the same port, with the same password.
        port_line = next(line for line in first.output().splitlines() if "started a private redis-server" in line)
        assert port_line in second.output()
    finally:
        status = second.stop(signal.SIGTERM)
    assert status == 0, second.tail()
    assert second.leftovers() == ""


def test_a_redis_that_cannot_load_its_data_is_given_up_on_with_a_clear_message(tmp_path):
    """A damaged append-only file: Redis exits at every start. `up` retries with growing delays, then gives up,
    says where the data is, exits 1 and leaves nothing running (never a silent loop, never an empty Redis)."""
    state = tmp_path / "state"
    first = Up(up_environment(state, free_port(), **FAST), tmp_path / "up-1.log").wait_until_serving()
    assert first.stop(signal.SIGTERM) == 0, first.tail()
    manifests = list((state / "redis" / "appendonlydir").glob("*.manifest"))
    assert len(manifests) == 1, manifests
    manifests[0].write_text("not a manifest\n")

    up = Up(up_environment(state, free_port(), **FAST), tmp_path / "up-2.log")
    try:
        status = up.process.wait(timeout=90)
    finally:
        up.stop(signal.SIGKILL)
    output = up.output()
    assert status == 1, up.tail()
    delays = [line.rsplit(" in ", 1)[1] for line in output.splitlines() if line.startswith("executioner: redis (pid")]
    assert delays == ["0.5 s", "1 s", "2 s", "4 s"], output[-4000:]
    assert (
        "executioner: redis exited within 10 s of starting 5 times in a row (last: exit status 1); giving up. "
        f"redis-server's own messages above say why; its data is in {state / 'redis'}"
    ) in output
    assert "Invalid AOF manifest file format" in output  # Redis's own reason, above
    assert "serving http" not in output
    assert up.leftovers() == ""
