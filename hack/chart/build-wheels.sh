#!/usr/bin/env bash
# Wheels for the application image (root Dockerfile), built on the host so the image build needs no index:
# the project itself plus every dependency, for CPython 3.11 on manylinux x86_64/aarch64 (the image's platform).
#
#   hack/chart/build-wheels.sh [out-dir]        default: build/wheels (emptied first)
#
# Dependencies are resolved for python_full_version "3.11" rather than the host's interpreter: base images differ
# in their patch release (the local cluster's stand-in is Debian's 3.11.2, which needs redis' async-timeout
# backport), and the lowest 3.11 pulls in every conditional dependency.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT=${1:-$ROOT/build/wheels}
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
arch=$(uname -m)
rm -rf "$OUT" && mkdir -p "$OUT"
# setuptools builds in-tree under build/; keep that out of the way of a stale build/lib
rm -rf "$ROOT/build/lib" "$ROOT/build/bdist."*
"$PY" -P -m pip wheel -q --no-deps "$ROOT" -w "$OUT" 2>/dev/null || "$PY" -P -m pip wheel --no-deps "$ROOT" -w "$OUT"
"$PY" -P -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
  --platform "manylinux_2_17_$arch" --platform "manylinux2014_$arch" --platform "manylinux_2_28_$arch" \
  --platform "manylinux_2_5_$arch" --platform "manylinux1_$arch" --platform any \
  -d "$OUT" "$OUT"/executioner-*.whl
# pip evaluates environment markers against the host's interpreter: add what an older 3.11 patch release needs
# (e.g. redis: async-timeout; python_full_version < '3.11.3'), until nothing is missing.
for _ in 1 2 3; do
  missing=$("$PY" - "$OUT" <<'PYEOF'
import sys, zipfile
from pathlib import Path
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
out = Path(sys.argv[1])
have = {canonicalize_name(parse_wheel_filename(w.name)[0]) for w in out.glob("*.whl")}
env = {"python_version": "3.11", "python_full_version": "3.11.0", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "sys_platform": "linux", "os_name": "posix"}
need = set()
for wheel in out.glob("*.whl"):
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        for line in z.read(meta).decode().splitlines():
            if line.startswith("Requires-Dist:"):
                req = Requirement(line.split(":", 1)[1].strip())
                if req.marker and "extra" in str(req.marker):
                    continue
                if (req.marker is None or req.marker.evaluate(env)) and canonicalize_name(req.name) not in have:
                    need.add(f"{req.name}{req.specifier}")
print(" ".join(sorted(need)))
PYEOF
)
  [ -n "$missing" ] || break
  echo "adding for older 3.11 releases: $missing" >&2
  # shellcheck disable=SC2086
  "$PY" -P -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 --abi abi3 \
    --abi none --platform "manylinux2014_$arch" --platform any -d "$OUT" $missing
done
echo "$(ls "$OUT" | wc -l) wheels in $OUT ($(du -sh "$OUT" | cut -f1))" >&2
