#!/usr/bin/env bash
# Say what of the local test cluster runs. Exit 0 when every component runs and the API answers.
set -uo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
rc=0
echo "state: $STATE   kubernetes: $KUBE_VERSION   etcd: $ETCD_VERSION   kube-router: $KUBE_ROUTER_VERSION" \
  "  local-path-provisioner: $LOCAL_PATH_VERSION"
for c in "${COMPONENTS[@]}"; do
  if p=$(pid_of "$c"); then printf '  %-24s running (pid %s)\n' "$c" "$p"
  else printf '  %-24s stopped\n' "$c"; rc=1; fi
done
if [ -f "$KUBECONFIG_PATH" ] && kctl get --raw /readyz >/dev/null 2>&1; then
  echo "api: ready (https://127.0.0.1:$API_PORT)"
  kctl get nodes -o wide 2>/dev/null | sed 's/^/  /'
  kctl get storageclasses 2>/dev/null | sed 's/^/  /'
  echo "KUBECONFIG=$KUBECONFIG_PATH"
else
  echo "api: not reachable"; rc=1
fi
if [ "$(cat "$STATE/fingerprint" 2>/dev/null)" != "$(cluster_fingerprint)" ]; then
  echo "config: started by other hack/cluster scripts than these; run up.sh again"; rc=1
fi
ip -br link show "$BRIDGE" 2>/dev/null | sed 's/^/bridge: /'
exit $rc
