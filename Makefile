# Kubeloop developer entry points. `make test` and `make demo` do their own set-up on a fresh
# machine: Python packages, then the control-plane binaries (built once, cached in .cache/).
# Everything Python runs in a virtualenv of the checkout, so a clone never touches another's.
BASE_PYTHON ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PYTEST_ARGS ?=
STAMP := $(VENV)/.kubeloop-installed

.PHONY: help setup tools test test-unit lint crds demo cluster-up cluster-down cluster-status

help:
	@echo "make demo          run the whole loop on the local control plane"
	@echo "make test          set up, lint, run every test (starts the local cluster)"
	@echo "make test-unit     only the tests that need no cluster"
	@echo "make cluster-up    start (or reuse) the local single-node cluster; cluster-down stops it"

$(STAMP): pyproject.toml
	test -x $(PYTHON) || $(BASE_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@mkdir -p $(dir $@) && touch $@

setup: $(STAMP)

tools:
	bash hack/build-tools.sh

lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

test: setup tools lint
	$(PYTHON) -m pytest $(PYTEST_ARGS)

test-unit: setup
	$(PYTHON) -m pytest -m "not cluster" $(PYTEST_ARGS)

crds: setup
	$(PYTHON) -m kubeloop.crdgen

demo: setup tools
	@bash hack/demo.sh

cluster-up: setup tools
	$(PYTHON) hack/devcluster.py up

cluster-down:
	python3 hack/devcluster.py down

cluster-status:
	python3 hack/devcluster.py status
