"""Programs the tests send into sandboxes, and ways to see their processes from the host."""

from __future__ import annotations

import subprocess
import textwrap
import time
import uuid


def program(source: str) -> str:
    """An indented triple-quoted program, dedented."""
    return textwrap.dedent(source).strip() + "\n"


def new_marker(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex}"


def sleeper(marker: str, seconds: int = 60) -> str:
    """Prints 'started', then becomes a process whose command line carries `marker` (visible to pgrep)."""
    return (
        "import os, sys\n"
        "print('started', flush=True)\n"
        f"os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep({seconds})', {marker!r}])\n"
    )


def processes_with(marker: str) -> list[str]:
    result = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return result.stdout.split()


def wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())
