# Shared settings for the local test cluster scripts (sourced, not executed).
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$HERE/versions.env"
CACHE="${EXECUTIONER_CACHE:-$HOME/.cache/executioner}"
STATE="${EXECUTIONER_CLUSTER_STATE:-/var/lib/executioner-cluster}"
RUNDIR=/run/executioner-cluster                      # containerd state + socket (tmpfs-backed /run)
CTRD_SOCK="$RUNDIR/containerd/containerd.sock"
KBIN="$CACHE/kubernetes-$KUBE_VERSION/bin"
ETCD_BIN="$CACHE/etcd-$ETCD_VERSION/bin/etcd"
KROUTER_BIN="$CACHE/kube-router-$KUBE_ROUTER_VERSION/bin/kube-router"
HELM_DIR="$CACHE/helm-$HELM_VERSION-k8s$HELM_KUBE_VERSION"
HELM_BIN="$HELM_DIR/bin/helm"
REGISTRY_BIN="$CACHE/registry-$REGISTRY_VERSION/bin/registry"
LOCAL_REGISTRY=127.0.0.1:5333                        # the registry tests start (plain HTTP); the node pulls from it
KUBE_SCORE_BIN="$CACHE/kube-score-$KUBE_SCORE_VERSION/bin/kube-score"
LOCAL_PATH_BIN="$CACHE/local-path-provisioner-$LOCAL_PATH_VERSION/bin/local-path-provisioner"
LOCAL_PATH_DIR="$STATE/local-path"                   # PersistentVolume data (one directory per volume)
LOCAL_PATH_NAMESPACE=local-path-storage              # where its helper pods run
# helper pods (mkdir/rm of a volume's directory) need a shell: the locally made Debian base, loaded under this name
LOCAL_PATH_HELPER_IMAGE="docker.io/executioner/local-path-helper:$DEBIAN_SUITE"
PAUSE_BIN="$CACHE/pause-$PAUSE_VERSION/bin/pause"
GVISOR_BIN="$CACHE/gvisor-$GVISOR_VERSION/bin"           # runsc and containerd-shim-runsc-v1
PAUSE_IMAGE="registry.k8s.io/pause:$PAUSE_VERSION"
NODE_NAME="${EXECUTIONER_NODE_NAME:-executioner-node}"
POD_CIDR=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
BRIDGE=exec-cni0
API_PORT=6443
ETCD_PORT=2379
KUBECONFIG_PATH="$STATE/kubeconfig"
# start order; down stops in reverse
COMPONENTS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kube-router
            local-path-provisioner)

log() { echo "[cluster $(date +%H:%M:%S)] $*" >&2; }

host_ip() { # the address of the interface holding the default route (the API server advertises it)
  ip -4 -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -1
}

pid_of() { # component -> pid if running (pid file present and process alive with the expected binary)
  local f="$STATE/pids/$1.pid" p
  [ -f "$f" ] || return 1
  p=$(cat "$f")
  [ -n "$p" ] && [ -d "/proc/$p" ] || return 1
  tr '\0' ' ' < "/proc/$p/cmdline" | grep -q -- "$1" || return 1
  echo "$p"
}

kctl() { "$KBIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# What the running cluster was started from: status.sh reports a cluster started by other scripts as stale, so the
# test fixtures run up.sh (idempotent) again and pick up new runtime handlers, profiles and settings.
cluster_fingerprint() {
  cat "$HERE/up.sh" "$HERE/common.sh" "$HERE/versions.env" "$HERE/../../charts/executioner/files/sandbox-seccomp.json" |
    sha256sum | cut -d' ' -f1
}
