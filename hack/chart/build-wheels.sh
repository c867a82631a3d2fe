#!/usr/bin/env bash
# Wheels for the application image (root Dockerfile), built on the host so the image build needs no index: the
# project itself plus exactly the versions uv.lock pins for its runtime dependencies (no test extra, no dev group),
# one wheel per package, for CPython 3.11 on manylinux x86_64/aarch64 (the image's platform). The Dockerfile's
# `pip install --no-index --find-links /wheels executioner` can therefore only install the lock's versions.
# requirements.txt beside them (not copied into the image) holds those pins with the lock's hashes.
#
#   hack/chart/build-wheels.sh [out-dir]        default: build/wheels (emptied first)
#
# The lock is universal: its environment markers are evaluated here for Linux CPython 3.11.0 to 3.11.29 on this
# machine's architecture, not for the host's interpreter as `pip download` would. Base images differ in their patch
# release (the local cluster's stand-in is Debian's 3.11.2, which needs redis' async-timeout backport,
# python_full_version < '3.11.3'), so every wheel any 3.11 needs is here; pip in the image evaluates the
# dependencies' markers for its own interpreter and installs only what that needs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT=${1:-$ROOT/build/wheels}
# any Python with pip (it downloads the wheels); .venv has none (uv manages it)
PY=${PYTHON:-python3}
# the Makefile's uv (same pinned version), fetched from PyPI into ~/.cache/executioner once
UV_VERSION=$(sed -n 's/^UV_VERSION := *//p' "$ROOT/Makefile")
UV=$HOME/.cache/executioner/uv-$UV_VERSION/bin/uv
[ -x "$UV" ] || make -C "$ROOT" -s --no-print-directory "$UV" >&2
# the image's architecture: this machine's unless WHEEL_ARCH names another (hack/images.sh, one per platform);
# manylinux tags name it x86_64 or aarch64 (`uname -m` says arm64 on some systems, and aarch64 wheels exist only
# from manylinux2014 / manylinux_2_17 on)
machine=${WHEEL_ARCH:-$(uname -m)}
case "$machine" in
  x86_64 | amd64) arch=x86_64; legacy=(--platform "manylinux_2_5_x86_64" --platform "manylinux1_x86_64") ;;
  aarch64 | arm64) arch=aarch64; legacy=() ;;
  *) echo "build-wheels: no manylinux wheels for $machine (x86_64 and aarch64 only)" >&2; exit 1 ;;
esac
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
rm -rf "$OUT" && mkdir -p "$OUT"
# setuptools builds in-tree under build/; keep that out of the way of a stale build/lib
rm -rf "$ROOT/build/lib" "$ROOT/build/bdist."*
UV_PYTHON_DOWNLOADS=never "$UV" build -q --wheel --python "$PY" --out-dir "$OUT" "$ROOT"
wheel=$(cd "$OUT" && ls executioner-*.whl)
version=$(echo "$wheel" | cut -d- -f2)
{ "$UV" export -q --project "$ROOT" --frozen --no-dev --no-emit-project --format requirements-txt --no-header --no-annotate
  echo "executioner==$version --hash=sha256:$(sha256sum "$OUT/$wheel" | cut -d' ' -f1)"; } > "$OUT/requirements.txt"
# the pins any Linux CPython 3.11 needs, markers dropped, hashes kept (pip checks them)
"$PY" -P - "$OUT/requirements.txt" "$arch" > "$tmp/download.txt" <<'PYEOF'
import sys
from pathlib import Path
try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a host Python without packaging: pip's copy
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name
requirements, arch = Path(sys.argv[1]), sys.argv[2]
envs = [{"python_version": "3.11", "python_full_version": f"3.11.{patch}", "implementation_version": f"3.11.{patch}",
         "implementation_name": "cpython", "platform_python_implementation": "CPython", "sys_platform": "linux",
         "os_name": "posix", "platform_system": "Linux", "platform_machine": arch} for patch in range(30)]
pins: dict[str, str] = {}
for line in requirements.read_text().replace("\\\n", " ").splitlines():
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    spec, *hashes = line.split(" --hash=")
    req = Requirement(spec)
    name = canonicalize_name(req.name)
    if name == "executioner" or (req.marker is not None and not any(req.marker.evaluate(env) for env in envs)):
        continue
    if name in pins:
        sys.exit(f"uv.lock pins {name} twice for different 3.11 releases: the Dockerfile's plain --find-links "
                 "install cannot choose by marker (it would have to install requirements.txt)")
    pins[name] = f"{req.name}{req.specifier}" + "".join(f" --hash={h.strip()}" for h in hashes)
print("\n".join(pins.values()))
PYEOF
"$PY" -P -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
  --platform "manylinux_2_17_$arch" --platform "manylinux2014_$arch" --platform "manylinux_2_28_$arch" \
  ${legacy[@]+"${legacy[@]}"} --platform any \
  -d "$OUT" -r "$tmp/download.txt"
# this host's 3.11 installs the lock's pins and hashes from here: the project needs nothing the lock lacks (checked
# only where pip's own platform is the wheels' one: Linux CPython 3.11 on $arch)
if "$PY" -P -c 'import platform, sys
sys.exit(sys.version_info[:2] != (3, 11) or sys.platform != "linux" or platform.machine() != sys.argv[1])' "$arch"; then
  "$PY" -P -m pip install -q --disable-pip-version-check --dry-run --ignore-installed --no-index --find-links "$OUT" \
    --require-hashes -r "$OUT/requirements.txt"
fi
echo "$(ls "$OUT"/*.whl | wc -l) wheels in $OUT ($(du -sh "$OUT" | cut -f1)), pinned by uv.lock" >&2
