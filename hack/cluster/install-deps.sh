#!/usr/bin/env bash
# Install (idempotently) the Debian packages the local test cluster needs. Safe to re-run; needs root.
set -euo pipefail
PKGS=(containerd runc containernetworking-plugins buildah iptables ipset conntrack iproute2 debootstrap
      gcc libc6-dev binutils curl ca-certificates util-linux procps openssl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then echo "install-deps: all packages present"; exit 0; fi
echo "install-deps: installing ${missing[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts containerd as a systemd service when systemd runs; the cluster runs its own instance
# (own config, own socket, own state dirs), so a packaged one is left alone.
