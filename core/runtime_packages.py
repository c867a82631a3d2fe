"""Local runtimes: each runtime's pinned packages, installed once into a read-only directory the local sandbox binds.

`executioner prepare-runtimes` (run by `make runtimes`, `make up` and the tests that need it) installs each offered
runtime's lock file, binary wheels only and without resolving anything (`--no-deps`: the lock names every
dependency), for the sandbox's interpreter, into a scratch directory beside its final place; it then makes it
read-only and renames it to <runtimes_dir>/<Runtime.dir_name>, so a directory under its final name is always whole.
The name carries the lock's hash: the same lock is installed once, a changed lock gets a directory of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

from executioner.runtimes import RUNTIME_PACKAGES_PATH, RUNTIMES, Runtime
from executioner.sandbox.runner import PREPARED_MPLCONFIG_DIR
from executioner.settings import Settings

PACKAGES_DIR = "site-packages"
# A root worker's sandbox runs as EXECUTIONER_SANDBOX_UID, which cannot enter /root (mode 0700): its default is a
# system cache directory instead of ~/.cache.
DEFAULT_RUNTIMES_DIR = "~/.cache/executioner/runtimes"
ROOT_RUNTIMES_DIR = "/var/cache/executioner/runtimes"
# What the program imports first in a data runtime: importing it once at preparation leaves nothing to compile later.
WARM_UP = "import matplotlib.pyplot, numpy, pandas, scipy"


class RuntimeNotPrepared(RuntimeError):
    """A runtime with packages whose directory this machine does not have."""


def runtimes_root(settings: Settings) -> Path:
    if settings.runtimes_dir == DEFAULT_RUNTIMES_DIR and os.geteuid() == 0:
        return Path(ROOT_RUNTIMES_DIR)
    return Path(settings.runtimes_dir).expanduser()


def unreachable_ancestor(path: Path) -> Path | None:
    """A directory on the way to `path` that a root worker's sandbox user may not pass through (no search
    permission for others), or None."""
    for directory in [*reversed(path.parents), path]:
        if os.geteuid() == 0 and not directory.stat().st_mode & stat.S_IXOTH:
            return directory
    return None


def packages_dir(settings: Settings, runtime: Runtime) -> Path:
    """Where a runtime's packages are on this machine, once prepared."""
    return runtimes_root(settings) / runtime.dir_name / PACKAGES_DIR


def prepared_packages(settings: Settings, runtime_name: str) -> Path | None:
    """The directory to bind at RUNTIME_PACKAGES_PATH for a runtime, None for one without packages; raises
    RuntimeNotPrepared when the runtime needs packages this machine has not installed."""
    runtime = RUNTIMES[runtime_name]
    if not runtime.packages:
        return None
    path = packages_dir(settings, runtime)
    if not path.is_dir():
        raise RuntimeNotPrepared(
            f"the runtime {runtime_name!r} is not prepared on this worker (no {path}): "
            "run `executioner prepare-runtimes` (or `make runtimes`) where the worker runs"
        )
    if blocked := unreachable_ancestor(path):
        raise RuntimeNotPrepared(
            f"the runtime {runtime_name!r} is prepared in {path}, but the sandbox's user cannot enter {blocked}: "
            "set EXECUTIONER_RUNTIMES_DIR to a directory others may enter and run `executioner prepare-runtimes`"
        )
    return path


def installer(settings: Settings) -> list[str]:
    """The command that installs wheels for the sandbox's interpreter: its own pip, or uv (EXECUTIONER_UV or `uv`
    on PATH) pointed at it."""
    python = settings.sandbox_python
    if subprocess.run([python, "-I", "-m", "pip", "--version"], capture_output=True).returncode == 0:
        return [python, "-I", "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    uv = os.environ.get("EXECUTIONER_UV") or shutil.which("uv")
    if uv:
        return [uv, "pip", "install", "--python", python, "--compile-bytecode", "--no-cache"]
    raise RuntimeError(f"neither {python} -m pip nor uv is available to install the runtimes' packages")


def prepare(runtime: Runtime, settings: Settings, say: Callable[[str], None] = print) -> Path | None:
    """Install a runtime's pinned packages unless its directory exists already; its packages' path (None for a
    runtime without packages)."""
    if not runtime.packages or runtime.lock_file is None:
        return None
    final = packages_dir(settings, runtime)
    if final.is_dir():
        say(f"{runtime.name}: prepared already ({final})")
        return final
    root = runtimes_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    scratch = root / f".{runtime.dir_name}.{os.getpid()}.tmp"
    remove_tree(scratch)
    say(f"{runtime.name}: installing {len(runtime.packages)} pinned packages into {final.parent}")
    try:
        target = scratch / PACKAGES_DIR
        command = [
            *installer(settings),
            "--no-deps",
            "--only-binary=:all:",
            "--target",
            str(target),
            "-r",
            str(runtime.lock_file),
        ]
        subprocess.run(command, check=True, cwd=root, stdin=subprocess.DEVNULL)
        shutil.copyfile(runtime.lock_file, scratch / "lock.txt")
        warm_up(settings, target)
        make_read_only(scratch)
        try:
            scratch.rename(final.parent)
        except OSError:
            if not final.is_dir():  # another preparation won the race: its copy is as good
                raise
    finally:
        remove_tree(scratch)
    say(f"{runtime.name}: ready ({final})")
    return final


def warm_up(settings: Settings, target: Path) -> None:
    """Import the runtime's packages from `target` with the sandbox's interpreter (a missing piece fails here, not in
    a user's program), and keep matplotlib's font list in target/.mplconfig, its paths as the sandbox sees them
    (the runner copies it where matplotlib looks)."""
    if not (target / "numpy").is_dir():
        return
    mplconfig = target / PREPARED_MPLCONFIG_DIR
    code = f"import sys; sys.path.insert(0, {str(target)!r}); {WARM_UP}"
    subprocess.run(
        [settings.sandbox_python, "-I", "-c", code],
        check=True,
        cwd=target,
        env={"PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(mplconfig), "HOME": str(mplconfig)},
    )
    for font_list in mplconfig.glob("fontlist-*.json"):
        font_list.write_text(sandbox_font_list(font_list.read_text(), target))
    for other in mplconfig.iterdir():
        if not other.name.startswith("fontlist-"):
            remove_tree(other) if other.is_dir() else other.unlink()


def sandbox_font_list(text: str, target: Path) -> str:
    """matplotlib's font list as the sandbox sees it: the runtime's fonts at RUNTIME_PACKAGES_PATH, and only the
    host's fonts the sandbox has too (under /usr, not /usr/local)."""
    font_list = json.loads(text)
    for key in ("ttflist", "afmlist"):
        fonts = []
        for font in font_list.get(key, []):
            path = font["fname"]
            if path.startswith(f"{target}/"):
                font["fname"] = RUNTIME_PACKAGES_PATH + path[len(str(target)) :]
            elif not path.startswith("/usr/") or path.startswith("/usr/local/"):
                continue
            fonts.append(font)
        font_list[key] = fonts
    return json.dumps(font_list, indent=2)


def make_read_only(top: Path) -> None:
    """Everyone may read (the sandbox's user is not the owner), nobody may write."""
    for path in [top, *top.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        readable = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
        if stat.S_ISDIR(mode) or mode & stat.S_IXUSR:
            readable |= stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
        path.chmod((stat.S_IMODE(mode) | readable) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def remove_tree(path: Path) -> None:
    """Remove a directory tree, read-only parts included."""
    if not path.exists():
        return
    for part in [path, *path.rglob("*")]:
        if part.is_dir() and not part.is_symlink():
            part.chmod(stat.S_IRWXU)
    shutil.rmtree(path)


def prepare_offered(settings: Settings, say: Callable[[str], None] = print) -> None:
    """Prepare every runtime the settings offer."""
    for name in settings.runtimes:
        prepare(RUNTIMES[name], settings, say)
