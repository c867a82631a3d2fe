#!/usr/bin/env bash
# Start (idempotently) the single-node local test cluster. Last line printed: KUBECONFIG=<path>.
# State (certs, etcd data, logs, pids, kubeconfigs) lives in $STATE (default /var/lib/executioner-cluster);
# containerd runtime state in /run/executioner-cluster. Everything is undone by down.sh.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
exec 9> /run/lock/executioner-cluster.lock; flock 9   # one up/down at a time
T0=$SECONDS

[ "$(id -u)" -eq 0 ] || { echo "cluster-up needs root (containerd, kubelet, iptables)" >&2; exit 1; }
for b in "$KBIN/kube-apiserver" "$KBIN/kubelet" "$KBIN/kubectl" "$ETCD_BIN" "$KROUTER_BIN" "$LOCAL_PATH_BIN" "$PAUSE_BIN" "$GVISOR_BIN/runsc"; do
  [ -x "$b" ] || { log "missing $b; building (make cluster-tools)"; "$HERE/build.sh"; break; }
done
for c in containerd runc ipset iptables buildah ctr; do
  command -v "$c" >/dev/null || { log "missing $c; running install-deps.sh"; "$HERE/install-deps.sh"; break; }
done

HOST_IP=$(host_ip)
[ -n "$HOST_IP" ] || { echo "cannot determine host IP" >&2; exit 1; }
mkdir -p "$STATE"/{pki,pids,logs,etcd,kubelet,containerd,cni/net.d,cni/ipam,kube-router,local-path-provisioner} \
  "$LOCAL_PATH_DIR" "$RUNDIR"
chmod 700 "$STATE"
write_file() { # path < content; rewrites only on change (kube-proxy exits when its config file changes)
  local tmp; tmp=$(mktemp "$1.XXXX"); cat > "$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}
# network namespaces that exist before we start (down.sh removes only the pod namespaces created after)
[ -f "$STATE/netns.before" ] || ls /var/run/netns 2>/dev/null > "$STATE/netns.before" || true
# containerd 1.6 puts shim sockets in /run/containerd/s whatever its state dir is; remove it on down if it is ours
[ -f "$STATE/run-containerd.before" ] || { [ -e /run/containerd ] && echo yes || echo no; } > "$STATE/run-containerd.before"

# ---------------------------------------------------------------- host settings (recorded once, restored by down)
if [ ! -f "$STATE/host-settings.orig" ]; then
  {
    for s in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables; do
      echo "$s=$(sysctl -n "$s")"
    done
  } > "$STATE/host-settings.orig"
fi
sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 net.ipv4.ip_forward=1
# Only local traffic: pods may talk to each other and to this host, never leave it (forwarding out of the bridge).
# The guard sits in mangle/FORWARD, which runs before filter/FORWARD where kube-proxy and kube-router put ACCEPTs.
iptables -t mangle -C FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment executioner-cluster -j DROP 2>/dev/null ||
  iptables -t mangle -I FORWARD 1 -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment executioner-cluster -j DROP

# ---------------------------------------------------------------- PKI
PKI="$STATE/pki"
gen_ca() {
  [ -f "$PKI/ca.crt" ] && return
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 \
    -subj "/CN=executioner-cluster-ca" 2>/dev/null
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}
gen_cert() { # name subject [SANs] [serverAuth]
  local n=$1 subj=$2 san=${3:-} ext
  [ -f "$PKI/$n.crt" ] && return
  ext="$PKI/$n.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$san" ]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$san";
    else echo "extendedKeyUsage=clientAuth"; fi
  } > "$ext"
  openssl req -newkey rsa:2048 -nodes -keyout "$PKI/$n.key" -out "$PKI/$n.csr" -subj "$subj" 2>/dev/null
  openssl x509 -req -in "$PKI/$n.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -out "$PKI/$n.crt" -days 3650 -extfile "$ext" 2>/dev/null
  rm -f "$PKI/$n.csr" "$ext"
}
gen_kubeconfig() { # file cert-name
  local f=$1 n=$2
  write_file "$f" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: executioner
  cluster:
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
    server: https://127.0.0.1:$API_PORT
users:
- name: $n
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/$n.crt")
    client-key-data: $(base64 -w0 < "$PKI/$n.key")
contexts:
- name: executioner
  context: {cluster: executioner, user: $n}
current-context: executioner
EOF
  chmod 600 "$f"
}
gen_ca
gen_cert apiserver "/CN=kube-apiserver" \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$API_SERVICE_IP,IP:$HOST_IP"
gen_cert apiserver-kubelet-client "/O=kube-apiserver-kubelet-clients/CN=kube-apiserver-kubelet-client"
gen_cert admin "/O=system:masters/CN=executioner-admin"
gen_cert controller-manager "/CN=system:kube-controller-manager"
gen_cert scheduler "/CN=system:kube-scheduler"
gen_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
gen_cert kube-proxy "/CN=system:kube-proxy"
gen_cert kube-router "/CN=system:executioner:kube-router"
gen_cert local-path-provisioner "/CN=system:executioner:local-path-provisioner"
gen_kubeconfig "$KUBECONFIG_PATH" admin
for n in controller-manager scheduler kubelet kube-proxy kube-router local-path-provisioner; do gen_kubeconfig "$STATE/$n.kubeconfig" "$n"; done

# ---------------------------------------------------------------- process helper
start() { # name cmd... ; starts detached (own session) unless already running
  local name=$1; shift
  if p=$(pid_of "$name"); then log "$name already running (pid $p)"; return; fi
  log "starting $name"
  # Daemons keep no descriptor but their log: an inherited one would hold its lock (ours, or a caller's
  # `flock FILE make cluster-up`) for as long as the cluster runs.
  ( for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
    exec setsid "$@" >> "$STATE/logs/$name.log" 2>&1 < /dev/null ) &
  echo $! > "$STATE/pids/$name.pid"
}
wait_for() { # description timeout cmd...
  local what=$1 t=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then log "timed out waiting for $what"; return 1; fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------- containerd
mkdir -p "$STATE/containerd/certs.d"
for reg in _default docker.io registry.k8s.io quay.io ghcr.io gcr.io; do
  # no registry is reachable and no packet may leave: send every pull to a closed local port
  mkdir -p "$STATE/containerd/certs.d/$reg"
  printf 'server = "http://127.0.0.1:9"\n[host."http://127.0.0.1:9"]\n  capabilities = ["pull", "resolve"]\n' \
    > "$STATE/containerd/certs.d/$reg/hosts.toml"
done
# ...except the registry the image tests start on loopback (`make images` pushes there)
mkdir -p "$STATE/containerd/certs.d/$LOCAL_REGISTRY"
printf 'server = "http://%s"\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$LOCAL_REGISTRY" "$LOCAL_REGISTRY" \
  > "$STATE/containerd/certs.d/$LOCAL_REGISTRY/hosts.toml"
write_file "$STATE/cni/net.d/10-executioner.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "executioner",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam",
               "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
# gVisor: the shim reads this file (runsc_config = runsc's flags). There is no KVM acceleration to rely on in a VM,
# so the systrap platform; the pod's network namespace is used as-is (netstack), cgroups v1 as the kubelet made them.
# Not oci-seccomp (the pod's profile applied inside the sentry): it answers EPERM where the profile says ENOSYS,
# so glibc's clone3 does not fall back to clone and no thread starts.
write_file "$STATE/containerd/runsc.toml" <<EOF
binary_name = "$GVISOR_BIN/runsc"
root = "$RUNDIR/runsc"
[runsc_config]
  platform = "systrap"
EOF
ctrd_config_before=$(cat "$STATE/containerd/config.toml" 2>/dev/null || true)
write_file "$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$RUNDIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$RUNDIR/containerd/containerd.sock.ttrpc"
[debug]
  address = "$RUNDIR/containerd/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  disable_apparmor = true
  # this machine's root cannot lower oom_score_adj (no CAP_SYS_RESOURCE): clamp to containerd's own value
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "${EXECUTIONER_RUNC:-$(command -v runc)}"
        Root = "$RUNDIR/runc"
    # RuntimeClass gvisor (handler runsc), applied below. containerd 1.6 ignores runtime_path when it starts a
    # sandbox, so it finds containerd-shim-runsc-v1 on its PATH: $GVISOR_BIN
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]
      runtime_type = "io.containerd.runsc.v1"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc.options]
        TypeUrl = "io.containerd.runsc.v1.options"
        ConfigPath = "$STATE/containerd/runsc.toml"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$STATE/containerd/certs.d"
EOF
mkdir -p "$RUNDIR/containerd"
if p=$(pid_of containerd) && [ "$ctrd_config_before" != "$(cat "$STATE/containerd/config.toml")" ]; then
  log "containerd config changed: restarting containerd (containers keep running in their shims)"
  kill "$p"; wait_for "containerd to stop" 30 bash -c "! kill -0 $p"
fi
start containerd env PATH="$GVISOR_BIN:$PATH" containerd --config "$STATE/containerd/config.toml"
wait_for containerd 30 ctr --address "$CTRD_SOCK" version

# pause image (compiled locally from pause.c), imported once
if ! ctr --address "$CTRD_SOCK" -n k8s.io images ls -q | grep -x "$PAUSE_IMAGE" >/dev/null; then
  PA="$CACHE/pause-$PAUSE_VERSION/pause-image.tar"
  if [ ! -s "$PA" ]; then
    c=$(buildah from --pull=never scratch)
    buildah copy "$c" "$PAUSE_BIN" /pause >/dev/null
    buildah config --entrypoint '["/pause"]' --user 65535:65535 "$c"
    buildah commit --rm "$c" "$PAUSE_IMAGE" >/dev/null
    rm -f "$PA"; buildah push --quiet "$PAUSE_IMAGE" "docker-archive:$PA:$PAUSE_IMAGE" >/dev/null
  fi
  ctr --address "$CTRD_SOCK" -n k8s.io images import "$PA" >/dev/null
  ctr --address "$CTRD_SOCK" -n k8s.io images label "$PAUSE_IMAGE" io.cri-containerd.pinned=pinned >/dev/null || true
fi

# helper image of the local-path provisioner: the Debian base (base-image.sh) under its own name, imported once
if ! ctr --address "$CTRD_SOCK" -n k8s.io images ls -q | grep -x "$LOCAL_PATH_HELPER_IMAGE" >/dev/null; then
  HA="$CACHE/images/local-path-helper-$DEBIAN_SUITE.tar"
  if [ ! -s "$HA" ]; then
    "$HERE/base-image.sh"
    buildah tag docker.io/library/python:3.11-slim "$LOCAL_PATH_HELPER_IMAGE"
    mkdir -p "$CACHE/images"; rm -f "$HA"
    buildah push --quiet "$LOCAL_PATH_HELPER_IMAGE" "docker-archive:$HA:$LOCAL_PATH_HELPER_IMAGE" >/dev/null
  fi
  ctr --address "$CTRD_SOCK" -n k8s.io images import "$HA" >/dev/null
  ctr --address "$CTRD_SOCK" -n k8s.io images label "$LOCAL_PATH_HELPER_IMAGE" io.cri-containerd.pinned=pinned >/dev/null || true
fi

# ---------------------------------------------------------------- etcd
start etcd "$ETCD_BIN" --name executioner --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster executioner=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
  --unsafe-no-fsync=true --quota-backend-bytes=2147483648 --log-level=warn
wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# ---------------------------------------------------------------- kube-apiserver
start kube-apiserver "$KBIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=0.0.0.0 --secure-port=$API_PORT --advertise-address="$HOST_IP" \
  --authorization-mode=Node,RBAC \
  --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,NodeRestriction,PodSecurity,ResourceQuota,DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,Priority,RuntimeClass \
  --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP,Hostname \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true --profiling=false \
  --endpoint-reconciler-type=lease --v=1
wait_for kube-apiserver 90 kctl get --raw /readyz

# kubectl logs/exec: the API server's kubelet-client identity may use the kubelet API
kctl create clusterrolebinding executioner:kubelet-api-admin --clusterrole=system:kubelet-api-admin \
  --user=kube-apiserver-kubelet-client --dry-run=client -o yaml | kctl apply -f - >/dev/null
# kube-router (NetworkPolicy enforcer) reads the objects it enforces
kctl apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "executioner:kube-router"}
rules:
- apiGroups: [""]
  resources: [namespaces, pods, services, endpoints, nodes]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [nodes]
  verbs: [patch, update]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, list, watch, create, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "executioner:kube-router"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "executioner:kube-router"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:executioner:kube-router"}
EOF

# gVisor for sandbox pods that ask for it (EXECUTIONER_RUNTIME_CLASS_NAME=gvisor)
kctl apply -f - >/dev/null <<EOF
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: gvisor}
handler: runsc
EOF

# ---------------------------------------------------------------- controller-manager, scheduler
start kube-controller-manager "$KBIN/kube-controller-manager" \
  --kubeconfig="$STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$STATE/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false \
  --controllers='*,bootstrap-signer-controller,token-cleaner-controller' \
  --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --allocate-node-cidrs=true --cluster-cidr="$CLUSTER_CIDR" --node-cidr-mask-size=24 \
  --service-cluster-ip-range="$SERVICE_CIDR" --v=1
start kube-scheduler "$KBIN/kube-scheduler" \
  --kubeconfig="$STATE/scheduler.kubeconfig" \
  --authentication-kubeconfig="$STATE/scheduler.kubeconfig" \
  --authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --v=1

# ---------------------------------------------------------------- kubelet
write_file "$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $HOST_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: "unix://$CTRD_SOCK"
failSwapOn: false
podCIDR: "$POD_CIDR"
maxPods: 110
# Bounds fork bombs in sandbox pods: a pids cgroup per pod (RLIMIT_NPROC would be node-wide per UID).
podPidsLimit: 256
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"}
evictionPressureTransitionPeriod: 10s
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 10s
resolvConf: /etc/resolv.conf
EOF
# The sandbox pods' Localhost seccomp profile, where the chart's seccompProfile DaemonSet would put it
# (EXECUTIONER_SANDBOX_SECCOMP_PROFILE=executioner/sandbox.json).
install -D -m 0644 "$HERE/../../charts/executioner/files/sandbox-seccomp.json" \
  "$STATE/kubelet/root/seccomp/executioner/sandbox.json"
start kubelet "$KBIN/kubelet" --config="$STATE/kubelet/config.yaml" \
  --kubeconfig="$STATE/kubelet.kubeconfig" --root-dir="$STATE/kubelet/root" --cert-dir="$STATE/kubelet/pki" \
  --hostname-override="$NODE_NAME" --node-ip="$HOST_IP" --v=1

# ---------------------------------------------------------------- kube-proxy (Service ClusterIPs, iptables mode)
write_file "$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: "$CLUSTER_CIDR"
hostnameOverride: "$NODE_NAME"
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clientConnection: {kubeconfig: "$STATE/kube-proxy.kubeconfig"}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, masqueradeAll: false}
nodePortAddresses: ["$HOST_IP/32"]
EOF
start kube-proxy "$KBIN/kube-proxy" --config="$STATE/kube-proxy.yaml" --v=1

# ---------------------------------------------------------------- ready?
wait_for "node $NODE_NAME Ready" 120 kctl wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s
wait_for "default service account" 60 kctl -n default get serviceaccount default

# ---------------------------------------------------------------- kube-router (NetworkPolicy only)
start kube-router "$KROUTER_BIN" --kubeconfig="$STATE/kube-router.kubeconfig" \
  --run-firewall=true --run-router=false --run-service-proxy=false --enable-cni=false \
  --hostname-override="$NODE_NAME" --enable-ipv4=true --enable-ipv6=false \
  --metrics-port=0 --health-port=20244 --iptables-sync-period=1m --v=1

wait_for "kube-router" 30 curl -fsS http://127.0.0.1:20244/healthz

# ---------------------------------------------------------------- local-path-provisioner (dynamic PersistentVolumes)
# Rancher's provisioner as a host process, like kube-router: for each claim of the default StorageClass `local-path`
# it runs a helper pod in $LOCAL_PATH_NAMESPACE that makes $LOCAL_PATH_DIR/<pv>_<namespace>_<claim> (and removes
# it when the volume is deleted), then creates a hostPath PersistentVolume pinned to this node. Its config and helper
# pod template are files it re-reads every 30 s (CONFIG_MOUNT_PATH); the helper pods get the setup/teardown scripts
# from a ConfigMap. v0.0.30 takes the helper image from the template (--helper-image must still be non-empty).
LPC="$STATE/local-path-provisioner"
write_file "$LPC/config.json" <<EOF
{"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$LOCAL_PATH_DIR"]}]}
EOF
write_file "$LPC/helperPod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: helper-pod
spec:
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: 1
  tolerations:
  - {key: node.kubernetes.io/disk-pressure, operator: Exists, effect: NoSchedule}
  containers:
  - name: helper-pod
    image: $LOCAL_PATH_HELPER_IMAGE
    imagePullPolicy: Never
    resources:
      requests: {cpu: 10m, memory: 16Mi}
      limits: {cpu: 500m, memory: 64Mi}
EOF
kctl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $LOCAL_PATH_NAMESPACE
  # helper pods run as root with a hostPath volume (the parent directory of the volumes)
  labels: {pod-security.kubernetes.io/enforce: privileged}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: local-path-provisioner-service-account, namespace: $LOCAL_PATH_NAMESPACE}
automountServiceAccountToken: false
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: $LOCAL_PATH_NAMESPACE}
data:
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "executioner:local-path-provisioner"}
rules:
- apiGroups: [""]
  resources: [nodes, persistentvolumeclaims, configmaps, pods, pods/log]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [persistentvolumes]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "executioner:local-path-provisioner"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "executioner:local-path-provisioner"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:executioner:local-path-provisioner"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: "executioner:local-path-provisioner", namespace: $LOCAL_PATH_NAMESPACE}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, update, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "executioner:local-path-provisioner", namespace: $LOCAL_PATH_NAMESPACE}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: "executioner:local-path-provisioner"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:executioner:local-path-provisioner"}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
EOF
lp_log="$STATE/logs/local-path-provisioner.log"; lp_from=$(($(stat -c %s "$lp_log" 2>/dev/null || echo 0) + 1))
lp_running=no; pid_of local-path-provisioner >/dev/null && lp_running=yes
start local-path-provisioner env CONFIG_MOUNT_PATH="$LPC/" "$LOCAL_PATH_BIN" --debug start \
  --kubeconfig "$STATE/local-path-provisioner.kubeconfig" --provisioner-name rancher.io/local-path \
  --namespace "$LOCAL_PATH_NAMESPACE" --configmap-name local-path-config \
  --service-account-name local-path-provisioner-service-account \
  --config "$LPC/config.json" --helper-pod-file "$LPC/helperPod.yaml" --helper-image "$LOCAL_PATH_HELPER_IMAGE"
lp_started() { pid_of local-path-provisioner && tail -c "+$lp_from" "$lp_log" | grep -q "Started provisioner controller"; }
[ "$lp_running" = yes ] || wait_for "local-path-provisioner" 30 lp_started
for c in "${COMPONENTS[@]}"; do
  pid_of "$c" >/dev/null || { log "$c is not running; see $STATE/logs/$c.log"; tail -20 "$STATE/logs/$c.log" >&2; exit 1; }
done
cluster_fingerprint > "$STATE/fingerprint"
log "cluster ready in $((SECONDS - T0)) s (Kubernetes $KUBE_VERSION, node $NODE_NAME, api https://$HOST_IP:$API_PORT)"
echo "KUBECONFIG=$KUBECONFIG_PATH"
