#!/usr/bin/env bash
# Build the application and sandbox images and push them to a registry, for a cluster that pulls its images:
#
#   hack/images.sh REGISTRY TAG        (make images REGISTRY=registry.example.com/team TAG=0.1.0)
#
# pushes REGISTRY/executioner/app:TAG and REGISTRY/executioner/sandbox:TAG, then install the chart with
#   make chart-install REGISTRY=... TAG=...   (or helm install ... --set image.repository=REGISTRY/executioner/app
#   --set image.tag=TAG --set sandboxImage.repository=REGISTRY/executioner/sandbox --set sandboxImage.tag=TAG)
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

for image in app sandbox; do
  ref="$registry/executioner/$image:$tag"
  if [ $image = app ]; then ctx=. df=Dockerfile; else ctx=sandbox-image df=sandbox-image/Dockerfile; fi
  buildah manifest rm "$ref" >/dev/null 2>&1 || true
  buildah manifest create "$ref" >/dev/null
  for platform in ${platforms//,/ }; do
    if [ $image = app ]; then  # wheels of that platform's architecture
      case ${platform#*/} in amd64) WHEEL_ARCH=x86_64 ;; arm64) WHEEL_ARCH=aarch64 ;; *) WHEEL_ARCH=${platform#*/} ;; esac
      WHEEL_ARCH=$WHEEL_ARCH hack/chart/build-wheels.sh >&2
    fi
    echo "[images] building $ref for $platform" >&2
    buildah bud --pull=missing --isolation chroot --layers=false --platform "$platform" --manifest "$ref" -f "$df" "$ctx" >&2
  done
  echo "[images] pushing $ref" >&2
  buildah manifest push --all --tls-verify="${TLS_VERIFY:-true}" "$ref" "docker://$ref" >&2
  echo "$ref"
done
