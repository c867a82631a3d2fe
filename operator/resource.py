"""The ExecutionRequest resource as the operator names it (no client imported here: the uninstall hook uses it)."""

from executioner.execution_requests import GROUP, PLURAL, VERSION

__all__ = ["FINALIZER", "GROUP", "PLURAL", "VERSION"]

# Kopf's finalizer on ExecutionRequests: deleting one cancels its execution first.
FINALIZER = "executioner.dev/cancel-execution"
