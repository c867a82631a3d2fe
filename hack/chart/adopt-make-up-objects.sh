#!/usr/bin/env bash
# Hand the objects `EXECUTIONER_BACKEND=kubernetes make up` created to a Helm release, so that a later
# `helm upgrade --install` adopts them instead of refusing ("exists and cannot be imported into the current
# release: invalid ownership metadata"):
#
#   hack/chart/adopt-make-up-objects.sh RELEASE NAMESPACE [helm values arguments: -f FILE, --set KEY=VALUE, ...]
#
# `make up` labels what it creates `app.kubernetes.io/managed-by: executioner-up` (operator/prerequisites.py). This
# script renders the chart with the given arguments (`helm template`, hooks left out), looks up every rendered
# object in the cluster of KUBECONFIG, and then
#   - leaves alone what does not exist yet or already belongs to RELEASE in NAMESPACE;
#   - adopts what carries the `make up` label: label `app.kubernetes.io/managed-by=Helm`, annotations
#     `meta.helm.sh/release-name=RELEASE` and `meta.helm.sh/release-namespace=NAMESPACE` (what Helm checks);
#   - adopts the ExecutionRequest CRD whoever applied it: one per cluster, shared by every release and by
#     `kubectl apply -f manifests/`, and kept on uninstall;
#   - refuses, changing nothing, when any other object is in the way (created by hand, by `kubectl apply -f
#     manifests/`, or owned by another release), naming each one and its owner.
# `make chart-install` (hack/chart/chart.mk) runs it right before `helm upgrade --install` with the same arguments.
# Environment: KUBECONFIG; HELM and KUBECTL override the binaries (default: the pinned ones, else from PATH).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RELEASE=${1:?usage: $0 RELEASE NAMESPACE [helm values arguments...]}
NAMESPACE=${2:?usage: $0 RELEASE NAMESPACE [helm values arguments...]}
shift 2
CHART=${CHART:-$ROOT/charts/executioner}
HELM=${HELM:-$("$ROOT/hack/chart/helm.sh")}
if [ -z "${KUBECTL:-}" ]; then
  KUBE_VERSION=$(sed -n 's/^KUBE_VERSION=\([^ ]*\).*/\1/p' "$ROOT/hack/cluster/versions.env")
  KUBECTL=${EXECUTIONER_CACHE:-$HOME/.cache/executioner}/kubernetes-$KUBE_VERSION/bin/kubectl
  [ -x "$KUBECTL" ] || KUBECTL=kubectl
fi
PY=python3  # the standard library is enough
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" --no-hooks "$@" > "$tmp/render.yaml"
# Everything the release would create, as it is in the cluster now (every namespaced template of the chart names
# its namespace, so no -n: kubectl would refuse objects of the sandbox namespace under it).
"$KUBECTL" get -f "$tmp/render.yaml" --ignore-not-found -o json > "$tmp/live.json"

"$PY" - "$RELEASE" "$NAMESPACE" "$tmp/live.json" "$tmp/adopt.json" <<'PYEOF'
import json
import sys

release, namespace, live, adopt_path = sys.argv[1:]
MANAGED_BY, MAKE_UP = "app.kubernetes.io/managed-by", "executioner-up"
text = open(live).read().strip()
found = json.loads(text) if text else {"kind": "List", "items": []}
items = found["items"] if found.get("kind") == "List" else [found]
adopt, refuse = [], []
for obj in items:
    meta = obj["metadata"]
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    owner = (annotations.get("meta.helm.sh/release-name"), annotations.get("meta.helm.sh/release-namespace"))
    where = f"{obj['kind']}/{meta['name']}" + (f" in namespace {meta['namespace']}" if meta.get("namespace") else "")
    if owner == (release, namespace) and labels.get(MANAGED_BY) == "Helm":
        continue  # the release's already
    shared_crd = obj["kind"] == "CustomResourceDefinition" and meta["name"] == "executionrequests.executioner.dev"
    if shared_crd or (labels.get(MANAGED_BY) == MAKE_UP and owner in ((None, None), (release, namespace))):
        adopt.append({"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                      "metadata": {k: meta[k] for k in ("name", "namespace") if k in meta}})
        why = "the cluster's shared CRD" if shared_crd else "created by `make up`"
        print(f"adopting {where} ({why}) for release {release} in namespace {namespace}", file=sys.stderr)
        continue
    how = f"{MANAGED_BY}={labels.get(MANAGED_BY, '<none>')}"
    if owner[0]:
        how += f", Helm release {owner[0]} in namespace {owner[1]}"
    refuse.append(f"  {where} ({how})")
if refuse:
    sys.exit(
        f"adopt-make-up-objects: release {release} (namespace {namespace}) would create objects that exist already and "
        f"were not created by `make up` (label {MANAGED_BY}={MAKE_UP}), so they are left alone:\n"
        + "\n".join(refuse)
        + "\nDelete them, or install under other names (e.g. --set sandbox.namespace=<another namespace>).")
json.dump({"apiVersion": "v1", "kind": "List", "items": adopt}, open(adopt_path, "w"))
PYEOF

if [ "$("$PY" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$tmp/adopt.json")" -gt 0 ]; then
  "$KUBECTL" annotate --overwrite -f "$tmp/adopt.json" \
    "meta.helm.sh/release-name=$RELEASE" "meta.helm.sh/release-namespace=$NAMESPACE" >/dev/null
  "$KUBECTL" label --overwrite -f "$tmp/adopt.json" app.kubernetes.io/managed-by=Helm
fi
