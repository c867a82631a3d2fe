#!/usr/bin/env bash
# Build one of the project's images and load it into the local cluster's containerd, unless an image with that
# name is already loaded and was built from the same inputs (a sha256 over the files the image is made of).
#
#   hack/chart/image.sh app|sandbox|sandbox-<runtime>|redis <image:tag>
#
# app      root Dockerfile: wheels from hack/chart/build-wheels.sh + frontend/dist (build the UI first)
# sandbox  sandbox-image/Dockerfile: python and the runner
# sandbox-python-data  sandbox-image/Dockerfile.python-data: the same plus the runtime's pinned packages, installed
#          from wheels cached by the lock's hash (hack/cluster/runtime-wheels.sh)
# redis    hack/chart/redis/Dockerfile: the local cluster's stand-in for docker.io/library/redis
# Set FORCE=1 to rebuild regardless. Prints the full image name; times go to stderr.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$ROOT/hack/cluster/common.sh"
[ $# -eq 2 ] || { echo "usage: $0 app|sandbox|sandbox-<runtime>|redis <image:tag>" >&2; exit 2; }
kind=$1 name=$2
cd "$ROOT"
case $kind in
  app)
    [ -f frontend/dist/index.html ] || { echo "frontend/dist is missing: run make frontend" >&2; exit 1; }
    inputs=$( { git ls-files -co --exclude-standard -- core api worker operator sandbox-image pyproject.toml uv.lock \
                  Dockerfile .dockerignore hack/chart/build-wheels.sh | grep -v -e '/tests/' -e '__pycache__';
                find frontend/dist -type f; } | sort -u)
    ctx=. df=Dockerfile ;;
  sandbox) inputs="sandbox-image/Dockerfile sandbox-image/runner.py"; ctx=sandbox-image df=sandbox-image/Dockerfile ;;
  sandbox-*)
    runtime=${kind#sandbox-} df=sandbox-image/Dockerfile.$runtime ctx=sandbox-image
    [ -f "$df" ] || { echo "no Dockerfile for the runtime $runtime ($df)" >&2; exit 2; }
    inputs="$df sandbox-image/runner.py sandbox-image/runtimes/$runtime.txt" ;;
  redis) inputs=$(find hack/chart/redis -type f | sort); ctx=hack/chart/redis df=hack/chart/redis/Dockerfile ;;
  *) echo "unknown image kind $kind" >&2; exit 2 ;;
esac
# the same normalisation build-image.sh applies: org/name:tag -> docker.io/org/name:tag
full=$name; first=${name%%/*}
if [ "$first" = "$name" ]; then full="docker.io/library/$name"
elif ! [[ "$first" == *.* || "$first" == *:* || "$first" == localhost ]]; then full="docker.io/$name"; fi
hash=$( { echo "$df"; for f in $inputs; do [ -f "$f" ] && { echo "$f"; sha256sum < "$f"; }; done; } | sha256sum | cut -c1-64)
stamp="$CACHE/images/$(echo "$full" | tr '/:@' '___').inputs"
loaded() { [ -S "$CTRD_SOCK" ] && ctr --address "$CTRD_SOCK" -n k8s.io images ls -q 2>/dev/null | grep -x "$full" >/dev/null; }
if [ "${FORCE:-0}" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] && loaded; then
  echo "[image] $full is loaded and up to date (inputs $(echo "$hash" | cut -c1-12))" >&2
  echo "$full"; exit 0
fi
t0=$SECONDS
build_args=()
case $kind in
  app) hack/chart/build-wheels.sh ;;
  sandbox-*) build_args=(-v "$(hack/cluster/runtime-wheels.sh "$runtime"):/wheels:ro" --build-arg WHEELS=/wheels) ;;
esac
hack/cluster/build-image.sh "$ctx" "$df" "$name" ${build_args[@]+"${build_args[@]}"} >/dev/null
mkdir -p "$(dirname "$stamp")" && echo "$hash" > "$stamp"
size=$(buildah images --format '{{.Size}}' "$full" 2>/dev/null | head -1)
echo "[image] built and loaded $full in $((SECONDS - t0)) s (${size:-size unknown})" >&2
echo "$full"
