#!/usr/bin/env bash
# Print the path of the pinned helm (hack/cluster/versions.env), building it once into ~/.cache/executioner the way
# the cluster harness does when it is missing; a helm on PATH is the fallback when Go is not available.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$ROOT/hack/cluster/versions.env"
CACHE="${EXECUTIONER_CACHE:-$HOME/.cache/executioner}"
pinned="$CACHE/helm-$HELM_VERSION-k8s$HELM_KUBE_VERSION/bin/helm"  # as HELM_BIN in hack/cluster/common.sh
if [ ! -x "$pinned" ]; then
  if command -v go >/dev/null || [ -x /usr/local/go/bin/go ]; then
    PATH=/usr/local/go/bin:$PATH "$ROOT/hack/cluster/build.sh" helm >&2
  elif command -v helm >/dev/null; then
    command -v helm; exit 0
  else
    echo "no helm: install Go (to build helm $HELM_VERSION) or put helm on PATH" >&2; exit 1
  fi
fi
echo "$pinned"
