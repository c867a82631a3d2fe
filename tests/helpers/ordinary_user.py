"""Run `executioner run` as an ordinary (non-root) account, from a copy of the sources that account can read.

CI runs as root from a checkout the account may not be able to read (under /root), with a virtualenv whose
interpreter lives there too: the account runs the system's python3 on a world-readable copy of the package and
of the third-party modules it imports.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
USER = "executioner-test-user"
SYSTEM_PYTHON = "/usr/bin/python3"
CGROUP_V1 = Path("/sys/fs/cgroup")

# What `executioner run` imports from site-packages, listed by the virtualenv's own interpreter.
_LIST_MODULES = """
import json, sys, sysconfig
import executioner.cli, executioner.worker.backends.local, executioner.worker.backends.seccomp
executioner.worker.backends.seccomp.filter_program()  # imports its libseccomp binding
site = sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]
names = {name.partition(".")[0] for name, module in list(sys.modules.items())
         if str(getattr(module, "__file__", "") or "").startswith(site)}
print(json.dumps(sorted(names)))
"""


def ensure_user() -> tuple[int, int]:
    """The unprivileged test account (created once, never removed: other runs may use it)."""
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(USER)
    assert entry.pw_uid != 0
    return entry.pw_uid, entry.pw_gid


@dataclass
class UserTree:
    """A world-readable directory holding the package, its third-party modules and the programs to run."""

    root: Path
    uid: int
    gid: int

    @property
    def pythonpath(self) -> str:
        return f"{self.root / 'package'}:{self.root / 'site'}"

    def program(self, name: str, source: str) -> Path:
        path = self.root / "programs" / name
        path.write_text(source, encoding="utf-8")
        path.chmod(0o644)
        return path

    def run(self, program: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        """`executioner run --json PROGRAM` as the test account, with only the given EXECUTIONER_* settings."""
        argv = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--"]
        argv += [SYSTEM_PYTHON, "-P", "-m", "executioner.cli", "run", "--json", str(program)]
        environment = {"PATH": "/usr/bin:/bin", "HOME": str(self.root), "LANG": "C.UTF-8"}
        environment["PYTHONPATH"] = self.pythonpath
        environment.update(env or {})
        return subprocess.run(argv, cwd=self.root, env=environment, capture_output=True, text=True, timeout=timeout)

    def run_json(self, program: Path, env: dict[str, str] | None = None) -> dict:
        result = self.run(program, env)
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError:
            raise AssertionError(
                f"no JSON document (exit {result.returncode}); stdout={result.stdout!r} stderr={result.stderr!r}"
            ) from None


def build_tree(uid: int, gid: int) -> UserTree:
    root = Path(tempfile.mkdtemp(prefix="executioner-user-"))
    root.chmod(0o755)
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(package_dir.items(), key=lambda item: item[0].count(".")):
        target = root.joinpath("package", *package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted((ROOT / folder).glob("*.py")):
            shutil.copyfile(source, target / source.name)
    listed = subprocess.run(
        [sys.executable, "-P", "-c", _LIST_MODULES], check=True, capture_output=True, text=True, cwd=ROOT
    )
    site_dirs = {Path(p) for p in sys.path if p.endswith("site-packages")}
    (root / "site").mkdir()
    for name in json.loads(listed.stdout):
        for site in site_dirs:
            if (site / name).is_dir():
                shutil.copytree(site / name, root / "site" / name, ignore=shutil.ignore_patterns("__pycache__"))
                break
            if (site / f"{name}.py").is_file():
                shutil.copyfile(site / f"{name}.py", root / "site" / f"{name}.py")
                break
        else:
            for site in site_dirs:  # a top-level extension module
                for shared in site.glob(f"{name}.*.so"):
                    shutil.copyfile(shared, root / "site" / shared.name)
    (root / "programs").mkdir()
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return UserTree(root, uid, gid)


@dataclass
class DelegatedV1:
    """A cgroup v1 memory + pids pair owned by the test account, as an administrator would delegate it."""

    memory: Path
    pids: Path

    @classmethod
    def create(cls, uid: int, gid: int, name: str) -> DelegatedV1:
        made = cls(CGROUP_V1 / "memory" / name, CGROUP_V1 / "pids" / name)
        for directory in (made.memory, made.pids):
            directory.mkdir()
            for path in (directory, *(p for p in directory.iterdir() if p.name in ("cgroup.procs", "tasks"))):
                os.chown(path, uid, gid)
        return made

    @property
    def setting(self) -> str:
        return f"{self.memory},{self.pids}"

    def children(self) -> list[Path]:
        return [p for d in (self.memory, self.pids) for p in d.iterdir() if p.is_dir()]

    def remove(self) -> None:
        for directory in (self.memory, self.pids):
            for child in (p for p in directory.iterdir() if p.is_dir()):
                child.rmdir()
            directory.rmdir()
