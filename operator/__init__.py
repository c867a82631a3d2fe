"""executioner.operator: the Kopf operator (ExecutionRequest, garbage collection, orphan recovery).

This folder is importable only as `executioner.operator`. When Python runs with the checkout's
root on sys.path (`python -m ...` from there, without -P) it could be found as the standard
library's `operator`; fail loudly instead of breaking in obscure places.
"""

if __name__ == "operator":
    raise ImportError(
        "the checkout's operator/ folder was imported as the standard library module 'operator': "
        "run Python with -P (or from another directory) so the current directory is not on sys.path"
    )
