#!/usr/bin/env bash
# Build (once) and cache the pinned cluster binaries from the Go module proxy.
#
#   hack/cluster/build.sh [tool...]     tools: kubernetes etcd helm kube-router local-path-provisioner pause
#                                       kube-score gvisor registry
#                                       (default: all)
#
# Everything lands in ~/.cache/executioner/<tool>-<version>/ (override the root with EXECUTIONER_CACHE);
# a tool whose bin/ is complete is never rebuilt, so a fresh clone reuses it. Nothing is written into the repo.
# Upstream modules with replace directives cannot be `go install`ed, so each tool gets a small wrapper module
# generated in its cache dir that requires the upstream module and pins the replaced modules to real versions.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$HERE/versions.env"
CACHE="${EXECUTIONER_CACHE:-$HOME/.cache/executioner}"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[ -x "$GO" ] || GO=/usr/local/go/bin/go
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
JOBS="${BUILD_JOBS:-2}"

log() { echo "[build $(date +%H:%M:%S)] $*" >&2; }

have_all() { # dir bin...
  local d=$1; shift
  for b in "$@"; do [ -x "$d/bin/$b" ] || return 1; done
}

build_kubernetes() {
  local v=$KUBE_VERSION minor d
  minor=$(echo "$v" | cut -d. -f2)
  d="$CACHE/kubernetes-$v"
  local bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
  if have_all "$d" "${bins[@]}"; then log "kubernetes $v cached in $d/bin"; return; fi
  mkdir -p "$d/src" "$d/bin"
  local t0=$SECONDS
  local kmod
  kmod=$(cd "$d/src" && curl -fsSL "$(goproxy)/k8s.io/kubernetes/@v/$v.mod")
  {
    echo "module executioner.local/kube-build"
    echo "$kmod" | grep -E '^(go|godebug) '
    echo "require k8s.io/kubernetes $v"
    # every staging module that k8s.io/kubernetes replaces with ./staging/src/k8s.io/<name> -> v0.<minor>.<patch>
    echo "$kmod" | awk '/=> \.\/staging\/src\// {print $1}' | sort -u |
      while read -r m; do echo "replace $m => $m v0.${v#v1.}"; done
  } > "$d/src/go.mod"
  local pkg=k8s.io/component-base/version cgv=k8s.io/client-go/pkg/version ld=""
  for p in $pkg $cgv; do
    ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  log "building kubernetes $v (${bins[*]}) in $d"
  (cd "$d/src" && "$GO" mod download k8s.io/kubernetes)
  for b in "${bins[@]}"; do
    [ -x "$d/bin/$b" ] && continue
    log "  go build $b"
    (cd "$d/src" && "$GO" build -p "$JOBS" -trimpath -ldflags "-s -w $ld" -o "$d/bin/$b.tmp" "k8s.io/kubernetes/cmd/$b")
    mv "$d/bin/$b.tmp" "$d/bin/$b"
  done
  echo "$((SECONDS - t0))" > "$d/build-seconds"
  log "kubernetes $v built in $((SECONDS - t0)) s"
}

goproxy() { "$GO" env GOPROXY | tr ',|' '\n\n' | grep -m1 '^http' || echo https://proxy.golang.org; }

build_etcd() {
  local v=$ETCD_VERSION d="$CACHE/etcd-$ETCD_VERSION"
  if have_all "$d" etcd; then log "etcd $v cached"; return; fi
  mkdir -p "$d/src" "$d/bin"
  local t0=$SECONDS
  local emod
  emod=$(curl -fsSL "$(goproxy)/go.etcd.io/etcd/server/v3/@v/$v.mod")
  {
    echo "module executioner.local/etcd-build"
    echo "$emod" | grep -E '^(go|godebug) '
    echo "require go.etcd.io/etcd/server/v3 $v"
    # the server module replaces its sibling modules with ../<dir>; pin them to the same release
    echo "$emod" | awk '/=> \.\.\// {print $1}' | sort -u | while read -r m; do echo "replace $m => $m $v"; done
  } > "$d/src/go.mod"
  log "building etcd $v"
  (cd "$d/src" && "$GO" build -p "$JOBS" -trimpath -ldflags "-s -w" -o "$d/bin/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$d/bin/etcd.tmp" "$d/bin/etcd"
  echo "$((SECONDS - t0))" > "$d/build-seconds"
  log "etcd built in $((SECONDS - t0)) s"
}

build_plain() { # name module version cmdpkg [ldflags] [cache dir]
  local name=$1 mod=$2 v=$3 pkg=$4 ld=${5:-}
  local d=${6:-"$CACHE/$name-$v"}
  if have_all "$d" "$name"; then log "$name $v cached"; return; fi
  mkdir -p "$d/src" "$d/bin"
  local t0=$SECONDS
  local m
  m=$(curl -fsSL "$(goproxy)/$mod/@v/$v.mod")
  {
    echo "module executioner.local/$name-build"
    echo "$m" | grep -E '^(go|godebug) '
    echo "require $mod $v"
  } > "$d/src/go.mod"
  log "building $name $v"
  (cd "$d/src" && "$GO" build -p "$JOBS" -trimpath -ldflags "-s -w $ld" -o "$d/bin/$name.tmp" "$pkg")
  mv "$d/bin/$name.tmp" "$d/bin/$name"
  echo "$((SECONDS - t0))" > "$d/build-seconds"
  log "$name built in $((SECONDS - t0)) s"
}

build_registry() {
  build_plain registry github.com/distribution/distribution/v3 "$REGISTRY_VERSION" \
    github.com/distribution/distribution/v3/cmd/registry
}

build_helm() {
  # helm's Makefile sets the Kubernetes version it assumes without a cluster (else 1.20, and a chart's kubeVersion
  # constraint fails `helm template` and `helm lint`)
  local major=${HELM_KUBE_VERSION%%.*} minor=${HELM_KUBE_VERSION#*.} ld="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  local pkg
  for pkg in chartutil lint/rules; do
    ld="$ld -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMinor=$minor"
  done
  build_plain helm helm.sh/helm/v3 "$HELM_VERSION" helm.sh/helm/v3/cmd/helm "$ld" "$CACHE/helm-$HELM_VERSION-k8s$HELM_KUBE_VERSION"
}

build_kube_router() {
  build_plain kube-router github.com/cloudnativelabs/kube-router/v2 "$KUBE_ROUTER_VERSION" \
    github.com/cloudnativelabs/kube-router/v2/cmd/kube-router \
    "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION"
}

build_local_path() {
  build_plain local-path-provisioner github.com/rancher/local-path-provisioner "$LOCAL_PATH_VERSION" \
    github.com/rancher/local-path-provisioner \
    "-X main.VERSION=$LOCAL_PATH_VERSION"
}

# the manifest linter the chart tests run over `helm template` and a sandbox Job (tests/chart/test_kube_score.py)
build_kube_score() {
  build_plain kube-score github.com/zegl/kube-score "$KUBE_SCORE_VERSION" github.com/zegl/kube-score/cmd/kube-score \
    "-X main.version=$KUBE_SCORE_VERSION"
}

build_gvisor() { # runsc and its containerd shim, both from the module's importable "go" branch
  local v=$GVISOR_VERSION d="$CACHE/gvisor-$GVISOR_VERSION"
  if have_all "$d" runsc containerd-shim-runsc-v1; then log "gvisor $v cached"; return; fi
  mkdir -p "$d/src" "$d/bin"
  local t0=$SECONDS m
  m=$(curl -fsSL "$(goproxy)/gvisor.dev/gvisor/@v/$v.mod")
  {
    echo "module executioner.local/gvisor-build"
    echo "$m" | grep -E '^(go|godebug) '
    echo "require gvisor.dev/gvisor $v"
  } > "$d/src/go.mod"
  log "building gvisor $v (runsc, containerd-shim-runsc-v1)"
  (cd "$d/src" && "$GO" mod download gvisor.dev/gvisor)
  [ -x "$d/bin/runsc" ] || (cd "$d/src" && "$GO" build -p "$JOBS" -trimpath \
    -ldflags "-s -w -X gvisor.dev/gvisor/runsc/version.version=$v" -o "$d/bin/runsc.tmp" gvisor.dev/gvisor/runsc &&
    mv "$d/bin/runsc.tmp" "$d/bin/runsc")
  # The shim gets two small patches, in a copy of the module (`go build -overlay` refuses module-cache files),
  # because it is built against containerd 2's shim library and our nodes run containerd 1.6:
  # 1. `start` prints its address as containerd 2's JSON bootstrap parameters; containerd 1.6 (which does not set
  #    MAX_SHIM_VERSION) reads the whole output as a bare socket address. Print the bare address to it.
  # 2. it lowers its own oom_score_adj to -999, which needs CAP_SYS_RESOURCE; root in our VMs lacks it (README.md),
  #    so a refused write leaves the shim at containerd's score instead of failing every gVisor pod (containerd's
  #    own runc shim only ever raises its score).
  local mod="$d/src/shim/gvisor"
  rm -rf "$d/src/shim"; mkdir -p "$d/src/shim"
  cp -r "$(cd "$d/src" && "$GO" list -m -f '{{.Dir}}' gvisor.dev/gvisor)" "$mod"; chmod -R u+w "$mod"
  sed -i -e 's/^\treturn shim.BootstrapParams{Version: 2, Address: address, Protocol: "ttrpc"}, nil$/\tif os.Getenv("MAX_SHIM_VERSION") == "" { fmt.Print(address); os.Exit(0) } \/\/ executioner: containerd 1.6\n&/' \
    -e 's/if err := sys.SetOOMScore(cmd.Process.Pid, oomScoreMax); err != nil {/& if os.IsPermission(err) {} else { \/\/ executioner: no CAP_SYS_RESOURCE/' \
    -e '/failed to set OOM Score on shim/{n;s/^\t}$/\t}}/}' "$mod/pkg/shim/v1/manager.go"
  [ "$(grep -c '// executioner: ' "$mod/pkg/shim/v1/manager.go")" = 2 ] || { log "gvisor: the shim patches no longer apply"; return 1; }
  { cat "$d/src/go.mod"; echo "replace gvisor.dev/gvisor => ./gvisor"; } > "$d/src/shim/go.mod"
  (cd "$d/src/shim" && "$GO" build -p "$JOBS" -trimpath -ldflags "-s -w" \
    -o "$d/bin/containerd-shim-runsc-v1.tmp" gvisor.dev/gvisor/shim)
  mv "$d/bin/containerd-shim-runsc-v1.tmp" "$d/bin/containerd-shim-runsc-v1"
  echo "$((SECONDS - t0))" > "$d/build-seconds"
  log "gvisor built in $((SECONDS - t0)) s"
}

build_pause() {
  local d="$CACHE/pause-$PAUSE_VERSION"
  if [ -x "$d/bin/pause" ]; then log "pause $PAUSE_VERSION cached"; return; fi
  mkdir -p "$d/bin"
  local src
  src="$("$GO" env GOMODCACHE)/k8s.io/kubernetes@$KUBE_VERSION/build/pause/linux/pause.c"
  if [ ! -f "$src" ]; then
    (cd "$CACHE/kubernetes-$KUBE_VERSION/src" 2>/dev/null && "$GO" mod download k8s.io/kubernetes) ||
      (mkdir -p "$d/src" && cd "$d/src" && printf 'module x\ngo 1.24\nrequire k8s.io/kubernetes %s\n' "$KUBE_VERSION" > go.mod &&
       "$GO" mod download -json k8s.io/kubernetes@"$KUBE_VERSION" >/dev/null)
  fi
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-executioner" -o "$d/bin/pause.tmp" "$src"
  strip "$d/bin/pause.tmp"
  mv "$d/bin/pause.tmp" "$d/bin/pause"
  log "pause built"
}

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(kubernetes etcd pause kube-router local-path-provisioner helm kube-score gvisor registry)
for t in "${tools[@]}"; do
  case $t in
    kubernetes) build_kubernetes ;;
    etcd) build_etcd ;;
    helm) build_helm ;;
    registry) build_registry ;;
    kube-router) build_kube_router ;;
    local-path-provisioner) build_local_path ;;
    pause) build_pause ;;
    kube-score) build_kube_score ;;
    gvisor) build_gvisor ;;
    *) echo "unknown tool $t" >&2; exit 2 ;;
  esac
done
