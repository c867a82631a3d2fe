#!/usr/bin/env bash
# Stop the local test cluster and undo its host changes: processes (by pid), containers, mounts, network
# namespaces, interfaces, iptables rules and ipsets, sysctls, kubepods cgroups, and the data of its
# PersistentVolumes (etcd, which knows them, is not kept either).
#   down.sh           keep certificates and containerd's image store (loaded images survive a restart)
#   down.sh --purge   also delete the whole state directory
set -uo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
exec 9> /run/lock/executioner-cluster.lock; flock 9   # one up/down at a time
PURGE=0; [ "${1:-}" = "--purge" ] && PURGE=1
[ "$(id -u)" -eq 0 ] || { echo "cluster-down needs root" >&2; exit 1; }
[ -d "$STATE" ] || { log "nothing to stop ($STATE absent)"; exit 0; }

stop_pid() { # name pid
  local n=$1 p=$2 i
  kill -TERM "$p" 2>/dev/null || return 0
  for i in $(seq 1 40); do [ -d "/proc/$p" ] || return 0; sleep 0.25; done
  log "$n (pid $p) did not stop; killing"
  kill -KILL "$p" 2>/dev/null; sleep 0.2
}

# 1. control plane and node agents, newest first (containerd last: containers are stopped through it)
for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
  c=${COMPONENTS[$i]}
  [ "$c" = containerd ] && continue
  if p=$(pid_of "$c"); then log "stopping $c (pid $p)"; stop_pid "$c" "$p"; fi
  rm -f "$STATE/pids/$c.pid"
done

# 2. containers: kill every task in our containerd, then containerd, then any shim still bound to our socket
if p=$(pid_of containerd); then
  for ns in $(ctr --address "$CTRD_SOCK" namespaces ls -q 2>/dev/null); do
    for t in $(ctr --address "$CTRD_SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
      ctr --address "$CTRD_SOCK" -n "$ns" tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1
    done
    sleep 0.5
    for t in $(ctr --address "$CTRD_SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
      ctr --address "$CTRD_SOCK" -n "$ns" tasks delete -f "$t" >/dev/null 2>&1
    done
    for t in $(ctr --address "$CTRD_SOCK" -n "$ns" containers ls -q 2>/dev/null); do
      ctr --address "$CTRD_SOCK" -n "$ns" containers delete "$t" >/dev/null 2>&1
    done
  done
  log "stopping containerd (pid $p)"
  stop_pid containerd "$p"
fi
rm -f "$STATE/pids/containerd.pid"
for d in /proc/[0-9]*; do
  cmd=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null) || continue
  case "$cmd" in
    *containerd-shim*"$CTRD_SOCK"*)
      p=${d#/proc/}
      # the shim's children are container processes of this cluster
      for ch in $(cat /proc/"$p"/task/*/children 2>/dev/null); do kill -KILL "$ch" 2>/dev/null; done
      log "killing leftover shim $p"; kill -KILL "$p" 2>/dev/null ;;
  esac
done

# 3. iptables rules and chains (kube-proxy, kube-router, kubelet, CNI portmap) and our FORWARD guard
[ -x "$KBIN/kube-proxy" ] && "$KBIN/kube-proxy" --cleanup >/dev/null 2>&1
[ -x "$KROUTER_BIN" ] && timeout 60 "$KROUTER_BIN" --cleanup-config >/dev/null 2>&1
sweep_iptables() { # iptables-variant (iptables, ip6tables, iptables-legacy, ...)
  local ipt=$1 t line chain
  command -v "$ipt" >/dev/null && command -v "$ipt-save" >/dev/null || return 0
  for t in filter nat mangle raw; do
    "$ipt-save" -t "$t" 2>/dev/null | grep -qE '^:(KUBE-|CNI-)|executioner-cluster' || continue
    # rules in other chains that jump into ours, and our FORWARD guard
    "$ipt-save" -t "$t" 2>/dev/null | grep -E '^-A ' | grep -vE '^-A (KUBE-|CNI-)' |
      grep -E -- '-j (KUBE-|CNI-)|executioner-cluster' | while read -r line; do
        eval "\"$ipt\" -w -t \"$t\" -D ${line#-A }" 2>/dev/null
      done
    for chain in $("$ipt-save" -t "$t" 2>/dev/null | sed -nE 's/^:((KUBE-|CNI-)[^ ]*) .*/\1/p'); do
      "$ipt" -w -t "$t" -F "$chain" 2>/dev/null
    done
    for chain in $("$ipt-save" -t "$t" 2>/dev/null | sed -nE 's/^:((KUBE-|CNI-)[^ ]*) .*/\1/p'); do
      "$ipt" -w -t "$t" -X "$chain" 2>/dev/null
    done
  done
}
for ipt in iptables ip6tables iptables-legacy ip6tables-legacy iptables-nft ip6tables-nft; do sweep_iptables "$ipt"; done
if command -v ipset >/dev/null; then
  for s in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router|inet6:KUBE-|inet6:kube-router)'); do
    ipset destroy "$s" 2>/dev/null
  done
fi

# 4. mounts (container rootfs, shm, kubelet volumes) and pod network namespaces
umount_under() {
  local prefix=$1 m
  findmnt -rn -o TARGET | awk -v p="$prefix" 'index($0, p) == 1' | sort -r | while read -r m; do
    m=$(printf '%b' "$m")
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
}
umount_under "$RUNDIR/"
umount_under "$STATE/"
if [ -f "$STATE/netns.before" ]; then
  for f in /var/run/netns/cni-*; do
    [ -e "$f" ] || continue
    grep -qx "$(basename "$f")" "$STATE/netns.before" && continue
    umount "$f" 2>/dev/null || umount -l "$f" 2>/dev/null
    rm -f "$f"
  done
fi

# 5. interfaces: veths on our bridge (normally gone with their namespaces), the bridge, kube-router's dummies
for v in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
  ip link delete "$v" 2>/dev/null
done
for l in "$BRIDGE" kube-dummy-if kube-bridge kube-ipvs0; do
  ip link show "$l" >/dev/null 2>&1 && { ip link delete "$l" 2>/dev/null && log "removed interface $l"; }
done

# 6. sysctls back to what they were before the first cluster-up
if [ -f "$STATE/host-settings.orig" ]; then
  while IFS== read -r k v; do [ -n "$k" ] && sysctl -qw "$k=$v" 2>/dev/null; done < "$STATE/host-settings.orig"
  rm -f "$STATE/host-settings.orig"
fi

# 7. cgroups the kubelet created (cgroupfs driver, cgroup v1 hierarchies and the unified one)
for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
  [ -d "$h/kubepods" ] || continue
  find "$h/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null
done

# 8. state: keep PKI and the image store unless --purge; a fresh etcd and kubelet dir for the next start
if [ "$(cat "$STATE/run-containerd.before" 2>/dev/null)" = no ] && [ ! -S /run/containerd/containerd.sock ]; then
  rm -rf /run/containerd
fi
rm -f "$STATE/run-containerd.before"
# the volumes of the local-path provisioner go with etcd: no PersistentVolume object would know them after a restart
rm -rf "$RUNDIR" "$STATE/etcd" "$STATE/kubelet/root" "$STATE/cni/ipam" "$STATE/netns.before" "$LOCAL_PATH_DIR"
[ "$PURGE" = 1 ] && rm -rf "$STATE"
rmdir /var/lib/kube-router 2>/dev/null
# paths hardcoded in libcni (result cache) and the kubelet (device-plugin socket dir): ours only, then empty dirs
rm -f /var/lib/cni/results/executioner-* /var/lib/cni/results/cni-loopback-* /var/lib/kubelet/device-plugins/kubelet.sock
rmdir /var/lib/cni/results /var/lib/cni /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null
left=$(findmnt -rn -o TARGET | grep -cE "^($STATE|$RUNDIR)/" || true)
[ "${left:-0}" = 0 ] || log "warning: $left mounts still under $STATE or $RUNDIR"
log "cluster stopped"
