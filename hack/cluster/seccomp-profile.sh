#!/usr/bin/env bash
# Regenerate charts/executioner/files/sandbox-seccomp.json, the Localhost seccomp profile for runc sandbox pods:
# containerd's RuntimeDefault (contrib/seccomp of the containerd version below, rendered for a container with no
# capabilities, as sandbox pods are) minus io_uring, whose calls RuntimeDefault still allows. bpf, keyctl, add_key,
# request_key, userfaultfd, perf_event_open, mount, unshare and setns are already absent from it without
# capabilities; everything absent answers EPERM. Output is for x86-64 (architectures x86_64, x86, x32).
#   hack/cluster/seccomp-profile.sh [containerd-version]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
V=${1:-v1.6.20}
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
cat > "$d/main.go" <<'GO'
package main

import (
	"encoding/json"
	"os"
	"strings"

	"github.com/containerd/containerd/contrib/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func main() {
	p := seccomp.DefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}})
	for i, rule := range p.Syscalls {
		kept := rule.Names[:0]
		for _, name := range rule.Names {
			if !strings.HasPrefix(name, "io_uring_") {
				kept = append(kept, name)
			}
		}
		p.Syscalls[i].Names = kept
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(p); err != nil {
		panic(err)
	}
}
GO
printf 'module executioner.local/seccomp-profile\ngo 1.22\nrequire github.com/containerd/containerd %s\n' "$V" > "$d/go.mod"
(cd "$d" && GOFLAGS=-mod=mod CGO_ENABLED=0 "$GO" run .) > "$REPO/charts/executioner/files/sandbox-seccomp.json"
