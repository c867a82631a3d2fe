#!/usr/bin/env bash
# The wheels of a runtime's lock file (sandbox-image/runtimes/<runtime>.txt) for the local cluster's sandbox images,
# downloaded once on the host and cached by the lock's hash, so building the image needs no index:
#
#   hack/cluster/runtime-wheels.sh <runtime>      prints the directory (~/.cache/executioner/runtime-wheels/...)
#
# The test cluster's stand-in for python:3.11-alpine is a Debian root (base-image.sh), so these are CPython 3.11
# manylinux wheels for this machine's architecture. An image for real users builds from the Alpine base and lets pip
# in the Dockerfile fetch the musllinux wheels itself (hack/images.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${EXECUTIONER_CACHE:-$HOME/.cache/executioner}"
[ $# -eq 1 ] || { echo "usage: $0 <runtime>" >&2; exit 2; }
lock="$ROOT/sandbox-image/runtimes/$1.txt"
[ -f "$lock" ] || { echo "runtime-wheels: no lock file $lock" >&2; exit 2; }
case "$(uname -m)" in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *) echo "runtime-wheels: no manylinux wheels for $(uname -m)" >&2; exit 1 ;;
esac
# the same key as core/runtimes.py's Runtime.lock_hash
dir="$CACHE/runtime-wheels/$1-$(sha256sum < "$lock" | cut -c1-16)-manylinux-$arch"
if [ ! -f "$dir/.complete" ]; then
  rm -rf "$dir" && mkdir -p "$dir"
  t0=$SECONDS
  "${PYTHON:-python3}" -P -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
    --platform "manylinux_2_17_$arch" --platform "manylinux2014_$arch" --platform "manylinux_2_28_$arch" \
    --platform any -d "$dir" -r "$lock" >&2
  touch "$dir/.complete"
  echo "[runtime-wheels] $1: $(ls "$dir"/*.whl | wc -l) wheels in $((SECONDS - t0)) s ($(du -sh "$dir" | cut -f1))" >&2
fi
echo "$dir"
