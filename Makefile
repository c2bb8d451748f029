# Kubeloop developer entry points. `make test` and `make demo` do their own set-up on a fresh
# machine: Python packages, then the control-plane binaries (built once, cached in .cache/).
PYTHON ?= python3
PYTEST_ARGS ?=
STAMP := .cache/kubeloop/pip-installed

.PHONY: help setup tools test test-unit lint crds demo cluster-up cluster-down cluster-status

help:
	@echo "make demo          run the whole loop on the local control plane"
	@echo "make test          set up, lint, run every test (starts the local control plane)"
	@echo "make test-unit     only the tests that need no cluster"
	@echo "make cluster-up    start (or reuse) the local control plane; cluster-down stops it"

$(STAMP): pyproject.toml
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

cluster-up: tools
	$(PYTHON) hack/devcluster.py up

cluster-down:
	$(PYTHON) hack/devcluster.py down

cluster-status:
	$(PYTHON) hack/devcluster.py status
