# Everyday tasks. `make up` serves the whole system locally; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
FRONTEND_SOURCES := $(shell find frontend/src frontend/index.html frontend/package.json frontend/vite.config.ts -type f 2>/dev/null)

.PHONY: help deps venv lock frontend frontend-deps runtimes up lint format test test-unit test-local test-cluster bench bench-kubernetes clean
help:
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

deps:  ## install redis-server, bubblewrap, util-linux and libseccomp2 from Debian when missing (as root), then check every prerequisite's version
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	command -v unshare >/dev/null || missing="$$missing util-linux"; \
	command -v pgrep >/dev/null || missing="$$missing procps"; \
	/sbin/ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2 ' || missing="$$missing libseccomp2"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@# versions too (bubblewrap >= 0.8, Python >= 3.11 with venv, Node.js >= 20.19, ...); an ordinary user gets the
	@# whole list of what to install
	@PYTHON="$(PYTHON)" hack/check-prerequisites.sh

browser-deps:  ## Debian's Chromium for the browser tests
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Python dependencies are locked in uv.lock; uv itself is pinned here and fetched from PyPI once per version into
# ~/.cache/executioner/uv-<version>/ (outside the clone, like the cluster tools). uv never downloads a Python: it
# uses $(PYTHON).
UV_VERSION := 0.13.9
UV_HOME := $(HOME)/.cache/executioner/uv-$(UV_VERSION)
UV := $(UV_HOME)/bin/uv
UV_RUN := UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=$(VENV) $(UV)
# what `make venv` installs: the runtime dependencies, the test extra and the dev (lint) group
UV_SYNC_ARGS := --extra test --group dev

venv: $(BIN)/executioner  ## the Python environment with the CLI at .venv/bin/executioner (exactly uv.lock)

# exactly the lock (`--frozen`: the lock is never re-resolved here), the project editable, nothing else (uv removes
# packages the lock does not name)
$(BIN)/executioner: pyproject.toml uv.lock $(UV)
	$(UV_RUN) sync --frozen $(UV_SYNC_ARGS) --python $(PYTHON)
	touch $@

# keeps every pin that still satisfies pyproject.toml; LOCK_ARGS="--upgrade-package NAME" (or --upgrade) moves pins on
LOCK_ARGS ?=
lock: $(UV)  ## re-resolve uv.lock after editing the dependencies in pyproject.toml (then `make venv`)
	$(UV_RUN) lock --python $(PYTHON) $(LOCK_ARGS)

# installed beside its final place and renamed, so an interrupted install never leaves a half-made uv behind; with
# the host's pip, or one from a throwaway venv when the host Python has none
$(UV):
	rm -rf $(UV_HOME).tmp $(UV_HOME).pip
	if $(PYTHON) -P -m pip --version >/dev/null 2>&1; then pip="$(PYTHON) -P -m pip"; \
	else $(PYTHON) -P -m venv $(UV_HOME).pip && pip="$(UV_HOME).pip/bin/python -P -m pip"; fi; \
	$$pip install -q --disable-pip-version-check --no-deps --only-binary=:all: --target $(UV_HOME).tmp uv==$(UV_VERSION)
	rm -rf $(UV_HOME).pip $(UV_HOME) && mv $(UV_HOME).tmp $(UV_HOME)
	$@ --version

frontend: frontend/dist/index.html  ## build the web UI the API serves at /

frontend/dist/index.html: $(FRONTEND_SOURCES) frontend/node_modules/.package-lock.json
	cd frontend && npm run build
	touch $@

frontend-deps: frontend/node_modules/.package-lock.json  ## the UI's npm packages, exactly as package-lock.json says

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error

# installed once per lock file (sandbox-image/runtimes/*.txt) under EXECUTIONER_RUNTIMES_DIR; seconds when cached
runtimes: venv  ## install the runtimes' pinned packages (python-data: numpy, pandas, ...) for the local sandbox
	EXECUTIONER_UV=$(UV) $(BIN)/executioner prepare-runtimes

up: deps venv frontend $(if $(filter kubernetes,$(EXECUTIONER_BACKEND)),sandbox-image sandbox-python-data-image,runtimes)  ## serve API, worker, web UI and a private Redis on http://127.0.0.1:8000
	$(BIN)/executioner up

lint: venv frontend-deps  ## ruff, mypy (strict on the shared core), the import layers, eslint and tsc
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# mypy and import-linter read the package as it is installed: laid out by hack/lint/package-tree.py
	tree=$$($(BIN)/python -P hack/lint/package-tree.py) && cd $$tree && \
	  $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p executioner && \
	  PYTHONPATH=$$tree $(CURDIR)/$(BIN)/lint-imports --config $(CURDIR)/pyproject.toml --no-cache
	cd frontend && npm run lint

format: venv  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-unit: venv  ## pure logic only: no Redis, bubblewrap, cluster or browser (seconds)
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

test: deps browser-deps venv lint frontend runtimes  ## lint, then every test: unit, integration, security, browser and the real cluster
	cd frontend && npm test
	$(BIN)/pytest tests/unit -q
	$(BIN)/pytest --ignore=tests/unit $(PYTEST_ARGS)

test-local: deps venv frontend runtimes  ## the tests that need no cluster and no browser
	$(BIN)/pytest -m "not cluster and not browser" $(PYTEST_ARGS)

bench: deps venv  ## print latency, throughput and memory figures against bare python3 (options: BENCH_ARGS=--help)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-kubernetes: deps venv  ## make bench, plus the Kubernetes backend's figures through a stack on the cluster (make images first)
	KUBECONFIG=$(or $(KUBECONFIG),/var/lib/executioner-cluster/kubeconfig) $(BIN)/python bench/run.py --kubernetes $(BENCH_ARGS)

clean:
	rm -rf $(VENV) frontend/dist frontend/node_modules test-artifacts

# Cluster targets (cluster-up, cluster-down, cluster-status, images, kind-up) live beside the harness.
-include hack/cluster/cluster.mk
# Chart and image targets (chart-install, chart-test, chart-lint, app-image, sandbox-image).
-include hack/chart/chart.mk
