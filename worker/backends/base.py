"""The one interface every sandbox backend implements."""

from __future__ import annotations

from typing import Protocol

from executioner.models import Execution, Outcome
from executioner.runner_protocol import OutputSink
from executioner.settings import Settings

LOST_WORKER_REASON = "the worker running this execution was lost before it finished; the result is unknown"


class SandboxUnavailable(RuntimeError):
    """A protection the sandbox depends on is missing: refuse to run code (fail closed)."""


class SandboxBackend(Protocol):
    name: str

    def run(self, execution: Execution, output: OutputSink | None = None) -> Outcome:
        """Run the execution to its end and report the outcome; never raises for user-code failures. The program's
        output goes to `output` as it is produced, where the backend can."""

    def cancel(self, execution_id: str) -> None:
        """Stop the execution's sandbox if it runs here; a no-op otherwise."""

    def cleanup(self, execution_id: str) -> None:
        """Remove whatever the execution left behind, once its result is recorded."""

    def recover(self, execution: Execution) -> Outcome | None:
        """The outcome of a `running` execution whose worker was lost, or None while it may still finish."""


def create_backend(settings: Settings) -> SandboxBackend:
    if settings.backend == "kubernetes":
        from executioner.worker.backends.kubernetes import KubernetesBackend

        return KubernetesBackend(settings)
    from executioner.worker.backends.local import LocalBackend

    backend = LocalBackend(settings)
    backend.start_pool()  # the worker's warm sandboxes (`executioner run` and the like start none)
    return backend
