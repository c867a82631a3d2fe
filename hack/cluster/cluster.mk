# Local single-node Kubernetes for the tests (see hack/cluster/README.md). Included by the top-level Makefile.
CLUSTER_DIR := hack/cluster
PROBE_IMAGE ?= executioner/cluster-probe:dev
KIND_CLUSTER ?= executioner

.PHONY: cluster-deps cluster-tools cluster-up cluster-down cluster-purge cluster-status images probe-image kind-up kind-down

cluster-deps:  ## apt-install containerd, runc, CNI plugins, buildah, iptables, ipset, debootstrap, ...
	$(CLUSTER_DIR)/install-deps.sh

cluster-tools: cluster-deps  ## build and cache the pinned binaries (~/.cache/executioner) and the base image
	PATH=/usr/local/go/bin:$$PATH $(CLUSTER_DIR)/build.sh
	$(CLUSTER_DIR)/base-image.sh

cluster-up: cluster-tools  ## start the local cluster (idempotent); last line KUBECONFIG=<path>
	@$(CLUSTER_DIR)/up.sh

cluster-down:  ## stop it and undo its host changes (keeps certs and loaded images)
	@$(CLUSTER_DIR)/down.sh

cluster-purge:  ## cluster-down and delete all cluster state
	@$(CLUSTER_DIR)/down.sh --purge

cluster-status:
	@$(CLUSTER_DIR)/status.sh

probe-image:  ## the minimal python image the cluster proof tests use
	$(CLUSTER_DIR)/build-image.sh tests/cluster/testdata tests/cluster/testdata/Dockerfile $(PROBE_IMAGE)

cluster-images: probe-image  ## build and load the probe image and the project's images into the local cluster
	@if $(MAKE) -n chart-images >/dev/null 2>&1; then $(MAKE) chart-images; \
	elif [ -f hack/chart/chart.mk ]; then $(MAKE) -f Makefile -f hack/chart/chart.mk chart-images; fi

kind-up:  ## for machines with Docker: a kind cluster with the project's images loaded
	hack/kind/up.sh $(KIND_CLUSTER)

kind-down:
	kind delete cluster --name $(KIND_CLUSTER)
