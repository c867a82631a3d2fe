"""Kopf handlers: ExecutionRequest in, execution out, status mirrored, sandbox namespace kept clean.

An ExecutionRequest is submitted through the same pipeline as the API
(`executioner.submission.submit`), so it is an execution like any other: the
workers run it, and this operator only translates and tidies up.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import kopf
import redis
from kubernetes import client

from executioner.admission import Admission
from executioner.execution_requests import belongs_to, owner_of
from executioner.kube import kubernetes_api_client
from executioner.models import Status
from executioner.operator.cleanup import sweep
from executioner.operator.pool import PoolRefiller
from executioner.operator.resource import FINALIZER, GROUP, PLURAL, VERSION
from executioner.operator.status import (
    ADMITTED,
    FINAL_PHASES,
    REJECTED,
    held_back_status,
    input_file,
    rejected_status,
    set_condition,
    status_of,
    with_live_output,
)
from executioner.queue import ExecutionQueue
from executioner.runtimes import DEFAULT_RUNTIME
from executioner.settings import Settings
from executioner.store import ExecutionStore
from executioner.streams import OutputSoFar
from executioner.submission import EnqueueFailed, InvalidSubmission, Refused, Submitter
from executioner.worker.backends.kubernetes import KubernetesBackend

# How often a running execution's status (and live output) is brought up to date.
MIRROR_WAIT_SECONDS = 1.0
NOT_ITS_EXECUTION = {
    "phase": "Error",
    "error": "status.executionId names an execution this ExecutionRequest did not submit",
}
log = logging.getLogger(__name__)
# Blocking Redis and Kubernetes calls run here, never on the event loop.
_threads = ThreadPoolExecutor(max_workers=32, thread_name_prefix="executioner-operator")
T = TypeVar("T")


async def blocking(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_threads, function, *args)


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Kopf's settings, and the operator's clients in `memo` (every handler gets a view of it)."""
    settings.persistence.finalizer = FINALIZER
    settings.peering.standalone = True
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 60
    settings.watching.client_timeout = 90
    settings.watching.connect_timeout = 10
    settings.execution.max_workers = 16
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="executioner.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="executioner.dev", key="last-handled"
    )
    config = Settings()
    memo.settings = config
    memo.store = ExecutionStore.from_settings(config)
    memo.submitter = Submitter(memo.store, ExecutionQueue(config), config, Admission(memo.store, config))
    memo.kube = kubernetes_api_client()
    memo.backend = KubernetesBackend(config, memo.kube)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod, the client library's in-cluster credentials (they address the API by the service's IP, so no
    cluster DNS is needed); elsewhere the kubeconfig KUBECONFIG names now (the client library fixes its default
    at import)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return kopf.login_via_client(**kwargs)
    return kopf.login_with_kubeconfig(**kwargs)


def condition_reason(reason: str) -> str:
    return "".join(word.title() for word in reason.split("_"))  # rate_limit -> RateLimit


@kopf.on.create(GROUP, VERSION, PLURAL)
async def submit_execution(
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    name: str,
    namespace: str | None,
    uid: str | None,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    if status.get("executionId") or status.get("phase") == REJECTED:
        return  # already handled (the handler is retried only if it failed before recording this)
    limits = spec.get("limits") or {}
    submitter: Submitter = memo.submitter
    generation, conditions = meta.get("generation"), status.get("conditions")
    try:
        execution = await blocking(
            lambda: submitter.submit(
                owner=owner_of(namespace),
                source=uid,
                code=spec["code"],
                stdin=spec.get("stdin", ""),
                # without memoryMb the Submitter gives the runtime's default memory, as the API does
                limits={
                    "timeout_seconds": limits.get("timeoutSeconds", memo.settings.default_timeout_seconds),
                    **({"memory_mb": limits["memoryMb"]} if "memoryMb" in limits else {}),
                },
                runtime=spec.get("runtime", DEFAULT_RUNTIME),
                files=[input_file(file) for file in spec.get("files") or []],
                refusal_subject=f"namespace {namespace}",
            )
        )
    except InvalidSubmission as exc:  # beyond this deployment's bounds: final, with the fields named
        patch.status.update(rejected_status(exc.errors, now(), generation=generation, conditions=conditions))
        log.info("ExecutionRequest %s/%s rejected: %s", namespace, name, exc)
        return
    except Refused as exc:  # rate limit, the namespace's cap, a full queue: stays Pending, submitted later
        refusal = exc.refusal
        document = held_back_status(
            condition_reason(refusal.reason), refusal.detail, now(), generation=generation, conditions=conditions
        )
        await blocking(patch_status, memo.kube, namespace, name, document)
        raise kopf.TemporaryError(f"not admitted yet: {refusal.detail}", delay=refusal.retry_after) from exc
    except EnqueueFailed as exc:
        raise kopf.TemporaryError(f"the execution could not be queued: {exc}", delay=5) from exc
    admitted = {"type": ADMITTED, "status": "True", "reason": ADMITTED, "message": f"execution {execution.id}"}
    conditions = set_condition(list(conditions or []), admitted, now())
    patch.status.update(
        status_of(execution, now(), namespace=namespace, name=name, generation=generation, conditions=conditions)
    )
    log.info("ExecutionRequest %s/%s is execution %s", namespace, name, execution.id)


@kopf.daemon(
    GROUP,
    VERSION,
    PLURAL,
    when=lambda status, **_: bool(status.get("executionId")) and status.get("phase") not in FINAL_PHASES,
    cancellation_timeout=5,
)
async def mirror_status(
    status: kopf.Status,
    meta: kopf.Meta,
    name: str,
    namespace: str | None,
    uid: str | None,
    stopped: kopf.DaemonStopped,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Follow the execution and copy every change into the resource's status until it is final, its output too
    while it runs (so `kubectl get exr -w` shows it live; Kubernetes RBAC decides who may read it)."""
    execution_id = status["executionId"]
    phase = status.get("phase")
    conditions = list(status.get("conditions") or [])
    store: ExecutionStore = memo.store
    output = OutputSoFar(execution_id)
    while not stopped:
        try:
            execution = await blocking(store.wait_until_terminal, execution_id, MIRROR_WAIT_SECONDS)
        except (redis.ConnectionError, redis.TimeoutError):  # the store is restarting: keep following
            log.warning("cannot reach the store to follow %s; retrying", execution_id)
            await stopped.wait(MIRROR_WAIT_SECONDS)
            continue
        if execution is None:
            await blocking(
                patch_status,
                memo.kube,
                namespace,
                name,
                {"phase": "Error", "error": "the execution record expired or vanished"},
            )
            return
        if not belongs_to(execution, namespace, uid):
            log.warning("%s/%s names execution %s, which it did not submit", namespace, name, execution_id)
            await blocking(patch_status, memo.kube, namespace, name, NOT_ITS_EXECUTION)
            return
        grew = False
        if not execution.status.terminal:
            grew = await blocking(output.read, store.redis)
            # Output read after the record may be newer than it (the program started in between): the record is read
            # again, so the phase shown is never older than the output beside it.
            execution = await blocking(store.get, execution_id) or execution
        document = status_of(
            execution, now(), namespace=namespace, name=name, generation=meta.get("generation"), conditions=conditions
        )
        if not execution.status.terminal:
            document = with_live_output(document, output.text)
        if document["phase"] != phase or grew or execution.status.terminal:
            await blocking(patch_status, memo.kube, namespace, name, document)
            phase, conditions = document["phase"], document["conditions"]
        if execution.status.terminal:
            return


def patch_status(kube: client.ApiClient, namespace: str | None, name: str, status: dict[str, Any]) -> None:
    client.CustomObjectsApi(kube).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, {"status": status}
    )


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def cancel_execution(
    status: kopf.Status, name: str, namespace: str | None, uid: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """Deleting the resource cancels its execution (only its own); the worker then stops the sandbox."""
    execution_id = status.get("executionId")
    store: ExecutionStore = memo.store
    if not execution_id:
        return
    execution = await blocking(store.get, execution_id)
    if execution is None or not belongs_to(execution, namespace, uid):
        return
    if await blocking(
        store.finish, execution_id, Status.cancelled, {"error": "cancelled: the ExecutionRequest was deleted"}
    ):
        log.info("cancelled execution %s of deleted %s/%s", execution_id, namespace, name)


@kopf.on.startup()
async def start_garbage_collector(memo: kopf.Memo, **_: Any) -> None:
    memo.collector = asyncio.create_task(collect_garbage_forever(memo))


@kopf.on.startup()
async def start_pool_refiller(memo: kopf.Memo, **_: Any) -> None:
    memo.pool = PoolRefiller(memo.settings, memo.backend.batch)
    await blocking(memo.pool.start)


@kopf.on.cleanup()
async def close_clients(memo: kopf.Memo, **_: Any) -> None:
    memo.pool.stop()
    memo.collector.cancel()
    memo.submitter.queue.close()
    memo.store.redis.close()


async def collect_garbage_forever(memo: kopf.Memo) -> None:
    while True:
        try:
            done = await blocking(sweep, memo.store, memo.backend)
            if any(done.values()):
                log.info("sweep: %s", {kind: len(items) for kind, items in done.items() if items})
        except Exception:
            log.exception("sweep failed")
        await asyncio.sleep(memo.settings.gc_interval_seconds)
