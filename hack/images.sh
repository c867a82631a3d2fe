#!/usr/bin/env bash
# Build the application and sandbox images and push them to a registry, for a cluster that pulls its images:
#
#   hack/images.sh REGISTRY TAG        (make images REGISTRY=registry.example.com/team TAG=0.1.0)
#
# pushes REGISTRY/executioner/app:TAG, REGISTRY/executioner/sandbox:TAG (the python runtime) and
# REGISTRY/executioner/sandbox-python-data:TAG, then install the chart with
#   make chart-install REGISTRY=... TAG=...   (or helm install ... --set image.repository=REGISTRY/executioner/app
#   --set image.tag=TAG --set sandboxImage.repository=REGISTRY/executioner/sandbox --set sandboxImage.tag=TAG
#   --set runtimes.images.python-data.repository=REGISTRY/executioner/sandbox-python-data
#   --set runtimes.images.python-data.tag=TAG)
# A runtime's image installs its lock's wheels (sandbox-image/runtimes/<name>.txt) with pip during the build: from the
# index for the real Alpine base (musllinux wheels), from the host's cache (hack/cluster/runtime-wheels.sh) on the
# test machine's Debian stand-in for this machine's platform.
#
# Built with buildah, as the test cluster's images are. PLATFORMS (default: this machine's, e.g. linux/amd64) may
# list several, e.g. PLATFORMS=linux/amd64,linux/arm64: each image is then a manifest list. A foreign platform needs
# its base images from their registry and, for the application image's RUN step, qemu-user-static (binfmt_misc).
# Log in first (`buildah login REGISTRY`); TLS_VERIFY=false pushes to a plain-HTTP registry (a local test one).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -eq 2 ] && [ -n "$1" ] && [ -n "$2" ] || { echo "usage: $0 REGISTRY TAG   (make images REGISTRY=... TAG=...)" >&2; exit 2; }
registry=${1%/} tag=$2
command -v buildah >/dev/null || { echo "images: buildah is needed (apt-get install buildah)" >&2; exit 1; }
case "$(uname -m)" in x86_64 | amd64) host=linux/amd64 ;; aarch64 | arm64) host=linux/arm64 ;; *) host=linux/$(uname -m) ;; esac
platforms=${PLATFORMS:-$host}
cd "$ROOT"
[ -f frontend/dist/index.html ] || { echo "images: frontend/dist is missing: run make frontend" >&2; exit 1; }
# where base images can be pulled, --pull=missing pulls them; on the test machine (no registry reachable) the cluster
# scripts made local stand-ins under the same names (hack/cluster/base-image.sh), which it uses as they are
[ "${EXECUTIONER_LOCAL_BASE_IMAGES:-0}" = 1 ] && hack/cluster/base-image.sh

for image in app sandbox sandbox-python-data; do
  ref="$registry/executioner/$image:$tag"
  build_args=()
  case $image in
    app) ctx=. df=Dockerfile ;;
    sandbox) ctx=sandbox-image df=sandbox-image/Dockerfile ;;
    sandbox-*)
      ctx=sandbox-image df=sandbox-image/Dockerfile.${image#sandbox-}
      if [ "${EXECUTIONER_LOCAL_BASE_IMAGES:-0}" = 1 ]; then
        build_args=(-v "$(hack/cluster/runtime-wheels.sh "${image#sandbox-}"):/wheels:ro" --build-arg WHEELS=/wheels)
      fi ;;
  esac
  buildah manifest rm "$ref" >/dev/null 2>&1 || true
  buildah manifest create "$ref" >/dev/null
  for platform in ${platforms//,/ }; do
    if [ $image = app ]; then  # wheels of that platform's architecture
      case ${platform#*/} in amd64) WHEEL_ARCH=x86_64 ;; arm64) WHEEL_ARCH=aarch64 ;; *) WHEEL_ARCH=${platform#*/} ;; esac
      WHEEL_ARCH=$WHEEL_ARCH hack/chart/build-wheels.sh >&2
    fi
    echo "[images] building $ref for $platform" >&2
    buildah bud --pull=missing --isolation chroot --layers=false --platform "$platform" --manifest "$ref" \
      ${build_args[@]+"${build_args[@]}"} -f "$df" "$ctx" >&2
  done
  echo "[images] pushing $ref" >&2
  buildah manifest push --all --tls-verify="${TLS_VERIFY:-true}" "$ref" "docker://$ref" >&2
  echo "$ref"
done
