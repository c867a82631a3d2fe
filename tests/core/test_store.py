"""The state machine on a real Redis: compare-and-set transitions, finality, retention, notifications."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from executioner.models import Execution, Limits, Status
from helpers.records import new_record


def test_lifecycle_queued_running_succeeded(store):
    execution = new_record(store)
    assert store.transition(execution.id, Status.running, lease_owner="w1", lease_seconds=5)
    assert store.lease_holder(execution.id) == "w1"
    assert execution.id in store.running_ids()
    assert store.finish(execution.id, Status.succeeded, {"stdout": "1\n", "exit_code": 0})
    record = store.get(execution.id)
    assert record.status is Status.succeeded and record.stdout == "1\n" and record.finished_at
    assert store.lease_holder(execution.id) is None
    assert execution.id not in store.running_ids()


@pytest.mark.parametrize("final", [s for s in Status if s.terminal])
def test_terminal_states_are_final(store, final):
    execution = new_record(store)
    store.transition(execution.id, Status.running)
    assert store.finish(execution.id, final)
    for other in Status:
        assert not store.transition(execution.id, other, {"stdout": "second result"})
    record = store.get(execution.id)
    assert record.status is final and record.stdout == ""


def test_queued_cannot_jump_to_a_result(store):
    execution = new_record(store)
    assert not store.finish(execution.id, Status.succeeded)
    assert store.get(execution.id).status is Status.queued


def test_concurrent_results_only_one_wins(store):
    execution = new_record(store)
    store.transition(execution.id, Status.running)
    wins = []
    barrier = threading.Barrier(8)

    def race(i: int) -> None:
        barrier.wait()
        if store.finish(execution.id, Status.succeeded, {"stdout": f"writer {i}"}):
            wins.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    assert store.get(execution.id).stdout == f"writer {wins[0]}"


def test_unknown_execution_does_not_transition(store):
    assert not store.transition(uuid.uuid4().hex, Status.running)


def test_records_expire_after_retention(store):
    execution = new_record(store)
    ttl = store.redis.ttl(store.record_key(execution.id))
    assert 3500 < ttl <= 3600


def test_lease_renewal_only_by_its_holder(store):
    execution = new_record(store)
    store.transition(execution.id, Status.running, lease_owner="w1", lease_seconds=5)
    assert store.renew_lease(execution.id, "w1", 5)
    assert not store.renew_lease(execution.id, "w2", 5)


def test_wait_until_terminal_wakes_on_the_transition(store):
    execution = new_record(store)
    store.transition(execution.id, Status.running)
    timer = threading.Timer(0.3, store.finish, args=(execution.id, Status.failed))
    timer.start()
    record = store.wait_until_terminal(execution.id, 10)
    assert record.status is Status.failed


def test_owners_see_only_their_own_list(store):
    mine = new_record(store, owner=f"key-{uuid.uuid4().hex}")
    new_record(store, owner=f"key-{uuid.uuid4().hex}")
    items, more = store.page(mine.owner, 10)
    assert [item.id for item in items] == [mine.id] and not more


def test_stored_bytes_are_counted_per_owner_and_given_back_when_records_expire(private_redis_url):
    from executioner.store import ExecutionStore

    store = ExecutionStore.from_url(private_redis_url, retention_seconds=2)
    owner = "bytes-" + uuid.uuid4().hex
    execution = new_record(store, owner=owner, code="x" * 1000)
    assert store.stored_bytes(owner) == 1000
    store.transition(execution.id, Status.running)
    store.finish(execution.id, Status.succeeded, {"stdout": "o" * 300, "stderr": "é" * 10})
    assert store.stored_bytes(owner) == 1000 + 300 + 20  # output counts in bytes, as stored
    time.sleep(3.2)  # past the records' retention
    assert store.get(execution.id) is None
    # The next creation gives back what expired before it counts anything new.
    new_record(store, owner=owner, code="y" * 10)
    assert store.stored_bytes(owner) == 10


def test_caps_are_checked_in_the_same_step_as_the_creation(store):
    from executioner.store import Caps

    owner = "capped-" + uuid.uuid4().hex
    caps = Caps(max_active_for_owner=3)
    created = []

    def create() -> None:
        execution = Execution.new(
            code="print(1)", limits=Limits(timeout_seconds=5, memory_mb=128), backend="local", owner=owner
        )
        if store.create(execution, caps) is None:
            created.append(execution.id)

    threads = [threading.Thread(target=create) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(created) == 3
    assert store.count_active(owner) == 3
    refused = store.create(
        Execution.new(code="x", limits=Limits(timeout_seconds=5, memory_mb=128), backend="local", owner=owner), caps
    )
    assert refused is not None and refused.cap == "active_cap" and refused.current == 3


def test_reconcile_drops_index_slots_of_records_that_are_gone(store):
    owner = "gone-" + uuid.uuid4().hex
    kept, lost = new_record(store, owner=owner), new_record(store, owner=owner)
    store.transition(lost.id, Status.running)
    store.redis.delete(store.record_key(lost.id))  # as an expired record would be
    assert store.count_active(owner) == 2
    assert store.reconcile_indexes() >= 3  # active set, running set, the owner's active set
    assert store.count_active(owner) == 1
    assert lost.id not in store.running_ids()
    assert store.get(kept.id) is not None


def test_payloads_have_their_own_retention_and_give_their_bytes_back(private_redis_url):
    from executioner.store import ExecutionStore

    store = ExecutionStore.from_url(private_redis_url, retention_seconds=3600, payload_retention_seconds=1)
    owner = "payload-" + uuid.uuid4().hex
    done = new_record(store, owner=owner, code="print('secret')")
    store.transition(done.id, Status.running)
    store.finish(done.id, Status.succeeded, {"stdout": "secret\n", "exit_code": 0})
    still_running = new_record(store, owner=owner, code="x" * 100)
    store.transition(still_running.id, Status.running)
    assert store.stored_bytes(owner) == len("print('secret')") + len("secret\n") + 100
    time.sleep(1.5)
    assert store.drop_expired_payloads() >= 1
    record = store.get(done.id)
    assert record.status is Status.succeeded and record.exit_code == 0  # the record stays
    assert record.payload_expired and record.code == record.stdout == record.stdin == ""
    assert store.stored_bytes(owner) == 100  # only the running one still holds bytes
    assert not store.get(still_running.id).payload_expired
    assert store.drop_expired_payloads() == 0  # each record once
