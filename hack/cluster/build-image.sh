#!/usr/bin/env bash
# Build one image from a Dockerfile with buildah (no Docker, no registry) and load it into the local cluster's
# containerd (namespace k8s.io), so pods can use it with imagePullPolicy IfNotPresent/Never.
#
#   hack/cluster/build-image.sh <context-dir> <dockerfile> <image-name:tag> [buildah bud options...]
#
# The base images our Dockerfiles name (docker.io/library/python:3.11-slim and :3.11-alpine) are made locally by
# base-image.sh. RUN steps execute with --isolation chroot (works as root without a container runtime network).
# Short names are stored fully qualified the way the kubelet resolves them: foo:1 -> docker.io/library/foo:1,
# org/foo:1 -> docker.io/org/foo:1. Set EXECUTIONER_IMAGE_NO_LOAD=1 to only build (and write the archive).
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
[ $# -ge 3 ] || { echo "usage: $0 <context-dir> <dockerfile> <image-name:tag> [buildah bud options...]" >&2; exit 2; }
ctx=$1 df=$2 name=$3
shift 3
case "$name" in *:*|*@*) ;; *) name="$name:latest" ;; esac
first=${name%%/*}
if [ "$first" = "$name" ]; then name="docker.io/library/$name"
elif ! [[ "$first" == *.* || "$first" == *:* || "$first" == localhost ]]; then name="docker.io/$name"; fi

"$HERE/base-image.sh"
log "building $name from $df (context $ctx)"
buildah bud --pull=never --isolation chroot --layers=false "$@" -f "$df" -t "$name" "$ctx" >&2
mkdir -p "$CACHE/images"
archive="$CACHE/images/$(echo "$name" | tr '/:@' '___').tar"
rm -f "$archive"
buildah push --quiet "$name" "docker-archive:$archive:$name" >/dev/null
if [ "${EXECUTIONER_IMAGE_NO_LOAD:-0}" != 1 ]; then
  [ -S "$CTRD_SOCK" ] || { echo "the cluster's containerd is not running ($CTRD_SOCK); run make cluster-up" >&2; exit 1; }
  ctr --address "$CTRD_SOCK" -n k8s.io images import "$archive" >/dev/null
  ctr --address "$CTRD_SOCK" -n k8s.io images ls -q | grep -x "$name" >/dev/null || { echo "import of $name failed" >&2; exit 1; }
  log "loaded $name into the cluster (containerd $CTRD_SOCK)"
fi
echo "$name"
