"""Lay out the `executioner` package as Python sees it once installed, as symlinks under build/package-tree.

The distribution maps top-level folders (core/, api/, worker/, operator/, sandbox-image/) onto one import
namespace through setuptools' package-dir. mypy and import-linter find modules by walking directories, so
they need that namespace laid out on disk; the links keep every file the one in the checkout.

    python hack/lint/package-tree.py      # prints the tree's root, to put first on MYPYPATH / PYTHONPATH
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREE = ROOT / "build" / "package-tree"


def main() -> None:
    package_dir: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    shutil.rmtree(TREE, ignore_errors=True)
    # Parents before children, so a subpackage's folder lands inside its parent's.
    for package, folder in sorted(package_dir.items(), key=lambda item: item[0].count(".")):
        target = TREE.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted((ROOT / folder).glob("*.py")):
            (target / source.name).symlink_to(source)
    print(TREE)


if __name__ == "__main__":
    main()
