"""Run the real operator in this process (kopf.testing.KopfRunner) with chosen settings."""

from __future__ import annotations

import os
from contextlib import contextmanager

from kopf.testing import KopfRunner


@contextmanager
def operator_running(env: dict[str, str]):
    """Run the real operator (all namespaces) with these settings until the block ends. Its startup handler
    reads the settings and makes its clients, so each run starts from this environment."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        with KopfRunner(
            ["run", "--standalone", "--all-namespaces", "-m", "executioner.operator.handlers"], timeout=60
        ) as runner:
            yield runner
        assert runner.exit_code == 0, runner.output
        assert runner.exception is None, runner.exception
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def operator_env(stack, operator_kubeconfig: str, **overrides: str) -> dict[str, str]:
    return {
        "EXECUTIONER_REDIS_URL": stack.env["EXECUTIONER_REDIS_URL"],
        "EXECUTIONER_BACKEND": "kubernetes",
        "EXECUTIONER_SANDBOX_NAMESPACE": stack.namespace,
        "EXECUTIONER_SANDBOX_IMAGE": stack.env["EXECUTIONER_SANDBOX_IMAGE"],
        "EXECUTIONER_RUNTIME_IMAGES": stack.env["EXECUTIONER_RUNTIME_IMAGES"],
        "EXECUTIONER_GC_INTERVAL_SECONDS": "2",
        "EXECUTIONER_LEASE_SECONDS": "5",
        "KUBECONFIG": operator_kubeconfig,
        **overrides,
    }
