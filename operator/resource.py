"""The ExecutionRequest resource as the operator names it (no client imported here: the uninstall hook uses it)."""

GROUP, VERSION, PLURAL = "executioner.dev", "v1alpha1", "executionrequests"
# Kopf's finalizer on ExecutionRequests: deleting one cancels its execution first.
FINALIZER = "executioner.dev/cancel-execution"
