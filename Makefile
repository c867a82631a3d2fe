# Everyday tasks. `make up` serves the whole system locally; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv
venv: $(BIN)/executioner

$(BIN)/executioner: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python -q -e '.[test]'
	touch $@

# Cluster targets (cluster-up, cluster-down, cluster-status, kind-up, images) live beside the harness.
-include hack/cluster/cluster.mk
