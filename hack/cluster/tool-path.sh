#!/usr/bin/env bash
# Print the path of a pinned cluster tool, building it first if needed:
#   hack/cluster/tool-path.sh kubectl|helm|kube-score|kube-apiserver|kubelet|etcd|kube-router|local-path-provisioner|...
#   e.g.  HELM=$(hack/cluster/tool-path.sh helm)
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
case "${1:?usage: $0 TOOL}" in
  helm) p=$HELM_BIN; t=helm ;;
  kube-score) p=$KUBE_SCORE_BIN; t=kube-score ;;
  etcd) p=$ETCD_BIN; t=etcd ;;
  kube-router) p=$KROUTER_BIN; t=kube-router ;;
  local-path-provisioner) p=$LOCAL_PATH_BIN; t=local-path-provisioner ;;
  pause) p=$PAUSE_BIN; t=pause ;;
  kubectl|kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy) p=$KBIN/$1; t=kubernetes ;;
  *) echo "unknown tool $1" >&2; exit 2 ;;
esac
[ -x "$p" ] || PATH=/usr/local/go/bin:$PATH "$HERE/build.sh" "$t" >&2
echo "$p"
