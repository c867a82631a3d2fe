"""Runtimes: which Python a program runs with and which packages it can import.

A sandbox has no network, so packages cannot be installed at run time: each runtime's packages are pinned in a lock
file (sandbox-image/runtimes/<name>.txt) and installed ahead of time, into a read-only directory bound into the local
sandbox (`executioner prepare-runtimes`) or into the runtime's sandbox image (sandbox-image/Dockerfile.<name>). In both,
the packages sit at RUNTIME_PACKAGES_PATH inside the sandbox, and the runner puts it on the program's path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import executioner.sandbox.runner as runner_module

DEFAULT_RUNTIME = "python"
# The sandbox's interpreter, on both backends: Debian's python3 locally, python:3.11-alpine in the images.
PYTHON_VERSION = "3.11"
# Where a runtime's packages are inside every sandbox.
RUNTIME_PACKAGES_PATH = "/opt/runtime/site-packages"
LOCKS_DIR = Path(runner_module.__file__).parent / "runtimes"


@dataclass(frozen=True)
class Runtime:
    name: str
    description: str
    # Memory a program gets when its request sets none: importing numpy, pandas and matplotlib takes about 100 MiB.
    default_memory_mb: int | None = None

    @property
    def lock_file(self) -> Path | None:
        path = LOCKS_DIR / f"{self.name}.txt"
        return path if path.is_file() else None

    @property
    def packages(self) -> tuple[tuple[str, str], ...]:
        """(name, version) of every pinned package, dependencies included; empty for the standard library alone."""
        return lock_packages(self.lock_file) if self.lock_file else ()

    @property
    def lock_hash(self) -> str:
        """What a prepared copy of this runtime is keyed by: its lock file's content."""
        return hashlib.sha256(self.lock_file.read_bytes()).hexdigest()[:16] if self.lock_file else "stdlib"

    @property
    def dir_name(self) -> str:
        """Its prepared directory's name under EXECUTIONER_RUNTIMES_DIR."""
        return f"{self.name}-{self.lock_hash}"


RUNTIMES: dict[str, Runtime] = {
    runtime.name: runtime
    for runtime in (
        Runtime(DEFAULT_RUNTIME, "Python with its standard library only."),
        Runtime("python-data", "Python with numpy, pandas, matplotlib (Agg) and scipy.", default_memory_mb=384),
    )
}


@cache
def lock_packages(lock_file: Path) -> tuple[tuple[str, str], ...]:
    packages = []
    for line in lock_file.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            packages.append((name.strip(), version.strip()))
    return tuple(packages)
