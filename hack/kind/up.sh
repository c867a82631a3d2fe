#!/usr/bin/env bash
# Create a kind cluster (needs Docker and kind) and load the project's images into it.
#   hack/kind/up.sh [cluster-name]
# Images get the names the Helm chart uses (executioner/<name>:<chart appVersion>) plus the cluster test probe.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NAME=${1:-executioner}
for t in docker kind; do command -v $t >/dev/null || { echo "kind-up needs $t on PATH (it cannot run without Docker)" >&2; exit 1; }; done
cd "$ROOT"
APPV=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' charts/executioner/Chart.yaml 2>/dev/null || true)
APPV=${APPV:-dev}
if ! kind get clusters 2>/dev/null | grep -qx "$NAME"; then
  kind create cluster --name "$NAME" --config hack/kind/config.yaml --wait 180s
fi
imgs=()
build() { # name context dockerfile
  [ -f "$3" ] || return 0
  docker build -t "$1" -f "$3" "$2"; imgs+=("$1")
}
build executioner/cluster-probe:dev tests/cluster/testdata tests/cluster/testdata/Dockerfile
build "executioner/sandbox:$APPV" sandbox-image sandbox-image/Dockerfile
if [ -f Dockerfile ]; then
  # the image copies the built web UI (frontend/dist) and the wheels: on a fresh clone neither exists yet
  make -C "$ROOT" --no-print-directory frontend
  hack/chart/build-wheels.sh
  build "executioner/app:$APPV" . Dockerfile
fi
build executioner/redis:7.0-local hack/chart/redis hack/chart/redis/Dockerfile
kind load docker-image --name "$NAME" "${imgs[@]}"
KC="${KIND_KUBECONFIG:-$HOME/.kube/kind-$NAME}"
mkdir -p "$(dirname "$KC")"
kind get kubeconfig --name "$NAME" > "$KC"
echo "KUBECONFIG=$KC"
