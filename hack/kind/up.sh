#!/usr/bin/env bash
# Create a kind cluster (needs Docker and kind) and load the project's images into it.
#   hack/kind/up.sh [cluster-name]      images: $SANDBOX_IMAGE, $APP_IMAGE, the test probe image
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NAME=${1:-executioner}
SANDBOX_IMAGE=${SANDBOX_IMAGE:-executioner/sandbox:dev}
APP_IMAGE=${APP_IMAGE:-executioner/app:dev}
APP_DOCKERFILE=${APP_DOCKERFILE:-Dockerfile}
PROBE_IMAGE=${PROBE_IMAGE:-executioner/cluster-probe:dev}
for t in docker kind; do command -v $t >/dev/null || { echo "kind-up needs $t on PATH" >&2; exit 1; }; done
if ! kind get clusters | grep -qx "$NAME"; then
  kind create cluster --name "$NAME" --config "$ROOT/hack/kind/config.yaml" --wait 120s
fi
cd "$ROOT"
docker build -t "$PROBE_IMAGE" -f tests/cluster/testdata/Dockerfile tests/cluster/testdata
imgs=("$PROBE_IMAGE")
if [ -f sandbox-image/Dockerfile ]; then docker build -t "$SANDBOX_IMAGE" sandbox-image; imgs+=("$SANDBOX_IMAGE"); fi
if [ -f "$APP_DOCKERFILE" ]; then docker build -t "$APP_IMAGE" -f "$APP_DOCKERFILE" .; imgs+=("$APP_IMAGE"); fi
kind load docker-image --name "$NAME" "${imgs[@]}"
KC="${KIND_KUBECONFIG:-$HOME/.kube/kind-$NAME}"
kind get kubeconfig --name "$NAME" > "$KC"
echo "KUBECONFIG=$KC"
