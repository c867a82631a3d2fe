#!/usr/bin/env bash
# Make the base images our Dockerfiles name exist in buildah's local storage, without any registry:
#   docker.io/library/python:3.11-slim    (application image base)
#   docker.io/library/python:3.11-alpine  (sandbox image base; upstream it is Alpine, here it is the same Debian root)
# Both are one Debian bookworm minbase root (debootstrap) with python3, pip and venv, trimmed.
# The result is cached as a docker-archive under ~/.cache/executioner/base-<suite>-<date>/ and re-imported from there.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/versions.env"
CACHE="${EXECUTIONER_CACHE:-$HOME/.cache/executioner}"
D="$CACHE/base-$DEBIAN_SUITE-v1"
ARCHIVE="$D/python-base.tar"
NAMES=(docker.io/library/python:3.11-slim docker.io/library/python:3.11-alpine)
log() { echo "[base-image] $*" >&2; }

present() { for n in "${NAMES[@]}"; do buildah inspect --type image "$n" >/dev/null 2>&1 || return 1; done; }
if present; then exit 0; fi

mirror() { # the Debian mirror apt already uses on this machine
  local m
  m=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
      grep -oE 'https?://[^ ]*/debian/?' | grep -v security | head -1)
  echo "${m:-http://deb.debian.org/debian}"
}

if [ ! -s "$ARCHIVE" ]; then
  mkdir -p "$D"
  root="$D/rootfs"
  rm -rf "$root"
  t0=$SECONDS
  log "debootstrap $DEBIAN_SUITE from $(mirror) (about a minute)"
  debootstrap --variant=minbase --include=python3-minimal,python3,python3-pip,python3-venv \
    "$DEBIAN_SUITE" "$root" "$(mirror)" > "$D/debootstrap.log" 2>&1 || { tail -20 "$D/debootstrap.log"; exit 1; }
  # trim: package caches, docs, man pages, locales; make pip behave like the official python image
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
         "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/var/log/*.log \
         "$root"/usr/lib/python3.11/EXTERNALLY-MANAGED
  find "$root" -name __pycache__ -type d -prune -exec rm -rf {} +
  ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
  ln -sf /usr/bin/pip3 "$root/usr/local/bin/pip"
  : > "$root/etc/resolv.conf"
  ctr=$(buildah from --pull=never scratch)
  mnt=$(buildah mount "$ctr")
  cp -a "$root"/. "$mnt"/
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --env PYTHONDONTWRITEBYTECODE=1 --cmd python3 \
    --label org.executioner.base="debian-$DEBIAN_SUITE-minbase" "$ctr"
  buildah commit --rm "$ctr" "${NAMES[0]}" >/dev/null
  rm -f "$ARCHIVE.tmp"
  buildah push --quiet "${NAMES[0]}" "docker-archive:$ARCHIVE.tmp:${NAMES[0]}" >/dev/null
  mv "$ARCHIVE.tmp" "$ARCHIVE"
  rm -rf "$root"
  log "base image built in $((SECONDS - t0)) s, cached at $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
else
  buildah pull --quiet "docker-archive:$ARCHIVE" >/dev/null
fi
buildah tag "${NAMES[0]}" "${NAMES[1]}"
present
log "base images ready: ${NAMES[*]}"
