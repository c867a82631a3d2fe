# Helm chart and images (see charts/executioner/README.md). Included by the top-level Makefile.
CHART_DIR := charts/executioner
CHART_VERSION_APP := $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' $(CHART_DIR)/Chart.yaml)
CHART_RELEASE ?= executioner
CHART_NAMESPACE ?= executioner
# extra `helm upgrade --install` arguments, e.g. CHART_ARGS="--set worker.replicas=2"
CHART_ARGS ?=
# Images from a registry (`make images REGISTRY=... TAG=...` pushed them): `make chart-install REGISTRY=... TAG=...`
# installs on any cluster. Without REGISTRY it targets this repository's own test cluster, with its specifics: the
# values in hack/chart/values-local.yaml (no cluster DNS, no registry) and images built and loaded into its containerd.
REGISTRY ?=
TAG ?= $(CHART_VERSION_APP)
ifneq ($(REGISTRY),)
CHART_LOCAL_VALUES ?=
CHART_BUILD_IMAGES ?= 0
CHART_IMAGE_ARGS = --set image.repository=$(REGISTRY)/executioner/app --set image.tag=$(TAG) \
  --set sandboxImage.repository=$(REGISTRY)/executioner/sandbox --set sandboxImage.tag=$(TAG) \
  --set runtimes.images.python-data.repository=$(REGISTRY)/executioner/sandbox-python-data \
  --set runtimes.images.python-data.tag=$(TAG)
else
CHART_LOCAL_VALUES ?= hack/chart/values-local.yaml
CHART_BUILD_IMAGES ?= 1
CHART_IMAGE_ARGS =
endif
APP_IMAGE_REF ?= executioner/app:$(CHART_VERSION_APP)
SANDBOX_IMAGE_REF ?= executioner/sandbox:$(CHART_VERSION_APP)
SANDBOX_PYTHON_DATA_IMAGE_REF ?= executioner/sandbox-python-data:$(CHART_VERSION_APP)
REDIS_IMAGE_REF ?= executioner/redis:7.0-local
# the values arguments both the adoption step and helm get
CHART_VALUES_ARGS = $(if $(CHART_LOCAL_VALUES),-f $(CHART_LOCAL_VALUES)) $(CHART_IMAGE_ARGS) $(CHART_ARGS)
CHART_KUBECONFIG = $(or $(KUBECONFIG),$(wildcard /var/lib/executioner-cluster/kubeconfig))
HELM_BIN = $(shell hack/chart/helm.sh)
KUBECTL_BIN = $(or $(wildcard $(HOME)/.cache/executioner/kubernetes-$(shell sed -n 's/^KUBE_VERSION=\([^ ]*\).*/\1/p' hack/cluster/versions.env)/bin/kubectl),kubectl)

.PHONY: images app-image sandbox-image sandbox-python-data-image redis-image chart-images chart-lint chart-manifests chart-install chart-test chart-uninstall

images: frontend/dist/index.html  ## build the app and sandbox images (every runtime's) and push them (REGISTRY=registry.example.com/team TAG=0.1.0); without REGISTRY, load them into the local cluster
	@if [ -n "$(REGISTRY)" ]; then hack/images.sh $(REGISTRY) $(TAG); else $(MAKE) --no-print-directory cluster-images; fi

app-image: frontend/dist/index.html  ## build the application image (wheels + web UI) and load it into the local cluster
	hack/chart/image.sh app $(APP_IMAGE_REF)

sandbox-image:  ## build the sandbox image and load it into the local cluster
	hack/chart/image.sh sandbox $(SANDBOX_IMAGE_REF)

sandbox-python-data-image:  ## build the python-data runtime's sandbox image (wheels cached by its lock) and load it
	hack/chart/image.sh sandbox-python-data $(SANDBOX_PYTHON_DATA_IMAGE_REF)

redis-image:  ## build the local cluster's Redis image (Debian redis-server, UID 999)
	hack/chart/image.sh redis $(REDIS_IMAGE_REF)

chart-images: app-image sandbox-image sandbox-python-data-image redis-image

chart-lint:  ## helm lint --strict and check manifests/ matches the chart's default render
	"$(HELM_BIN)" lint --strict $(CHART_DIR)
	"$(HELM_BIN)" lint --strict $(CHART_DIR) -f $(CHART_LOCAL_VALUES)
	hack/chart/render-manifests.sh --check

chart-manifests:  ## regenerate manifests/ from the chart (helm template)
	hack/chart/render-manifests.sh

chart-install: $(if $(filter 1,$(CHART_BUILD_IMAGES)),chart-images)  ## install/upgrade the chart into the cluster in KUBECONFIG (adopting what `make up` created)
	@test -n "$(CHART_KUBECONFIG)" || { echo "KUBECONFIG is not set (make cluster-up prints it)" >&2; exit 1; }
	@# the release namespace enforces Pod Security "restricted" too: every pod of the chart passes it
	printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    pod-security.kubernetes.io/enforce: restricted\n' \
	  $(CHART_NAMESPACE) | $(KUBECTL_BIN) --kubeconfig $(CHART_KUBECONFIG) apply -f -
	@# what a kubernetes-mode `make up` created (the sandbox namespace and its policies) goes to the release; anything
	@# else in the way stops here with its name
	KUBECONFIG=$(CHART_KUBECONFIG) HELM="$(HELM_BIN)" KUBECTL=$(KUBECTL_BIN) hack/chart/adopt-make-up-objects.sh \
	  $(CHART_RELEASE) $(CHART_NAMESPACE) $(CHART_VALUES_ARGS)
	"$(HELM_BIN)" upgrade --install $(CHART_RELEASE) $(CHART_DIR) --kubeconfig $(CHART_KUBECONFIG) \
	  -n $(CHART_NAMESPACE) $(CHART_VALUES_ARGS) --wait --timeout 5m
	"$(HELM_BIN)" status $(CHART_RELEASE) --kubeconfig $(CHART_KUBECONFIG) -n $(CHART_NAMESPACE) --show-resources | head -5

chart-test:  ## helm test: a hello world through the installed API Service (the pod's log is shown when it fails)
	@test -n "$(CHART_KUBECONFIG)" || { echo "KUBECONFIG is not set (make cluster-up prints it)" >&2; exit 1; }
	@# a passing test pod is deleted (hook-succeeded) so `helm uninstall` leaves nothing behind; a failing one stays
	"$(HELM_BIN)" test $(CHART_RELEASE) --kubeconfig $(CHART_KUBECONFIG) -n $(CHART_NAMESPACE) --timeout 5m || { \
	  $(KUBECTL_BIN) --kubeconfig $(CHART_KUBECONFIG) -n $(CHART_NAMESPACE) logs \
	    -l app.kubernetes.io/instance=$(CHART_RELEASE),app.kubernetes.io/component=test --tail=50; exit 1; }

chart-uninstall:  ## helm uninstall (the CRD stays, see the chart README)
	"$(HELM_BIN)" uninstall $(CHART_RELEASE) --kubeconfig $(CHART_KUBECONFIG) -n $(CHART_NAMESPACE) --wait
