# Kubeloop developer entry points. `make test` and `make demo` do their own set-up on a fresh
# machine: Python packages, then the control-plane binaries (built once, cached in .cache/).
# Everything Python runs in a virtualenv of the checkout, so a clone never touches another's.
BASE_PYTHON ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PYTEST_ARGS ?=
STAMP := $(VENV)/.kubeloop-installed

.PHONY: help setup s3-emulator tools images images-load images-down test test-unit lint crds demo demo-down cluster-up cluster-down cluster-status \
	deploy undeploy kind-up kind-load kind-down

# `make deploy`: the chart with the locally built images, into the cluster $KUBECONFIG names, or,
# when it is unset, the local cluster of hack/devcluster.py (KUBELOOP_CACHE picks which one; the
# real node's cache makes it the node). Images are never pulled: build and load them first.
RELEASE ?= kubeloop
DEPLOY_NAMESPACE ?= kubeloop-system
OPERATOR_REPOSITORY ?= kubeloop-operator
RUNTIME_REPOSITORY ?= kubeloop-runtime
IMAGE_TAG ?= dev
# `helm --wait` also waits for the chart-made artifact claim to be Bound; on a WaitForFirstConsumer
# StorageClass (kind's, the local node's) the chart's binder Job is the claim's first consumer.
DEPLOY_ARGS ?= --wait --timeout 5m
HELM_ARGS ?=
# kind: the cluster's own kubeconfig, so it never becomes the current context of ~/.kube/config.
KIND ?= kind
KIND_CLUSTER ?= kubeloop
KIND_KUBECONFIG ?= .cache/kubeloop/kind.kubeconfig
# Exports KUBECONFIG (given, else the local cluster's) and a PATH with the pinned helm/kubectl.
CLUSTER_ENV = given="$$KUBECONFIG"; eval "$$(python3 hack/devcluster.py env)"; \
	export KUBECONFIG="$${given:-$$KUBECONFIG}"; echo "cluster: $$KUBECONFIG"

help:
	@echo "make demo          the whole loop on a real local cluster, narrated (~3 min warm)"
	@echo "make demo-down     remove what make demo started"
	@echo "make test          set up, lint, run every test (starts the local cluster)"
	@echo "make test-unit     only the tests that need no cluster"
	@echo "make cluster-up    start (or reuse) the local single-node cluster; cluster-down stops it"
	@echo "make images        build kubeloop-runtime:dev and kubeloop-operator:dev (when their inputs changed)"
	@echo "make images-load   build them and load them into the local node"
	@echo "make deploy        helm upgrade --install the chart with the local images (undeploy removes it)"
	@echo "make kind-up       a kind cluster (needs Docker); kind-load loads the images, kind-down deletes it"

$(STAMP): pyproject.toml
	test -x $(PYTHON) || $(BASE_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@mkdir -p $(dir $@) && touch $@

setup: $(STAMP)

# The S3 emulator (moto) that the S3 store's node test runs on the node's bridge address, in a
# virtualenv of its own: botocore caps python-dateutil below what kubernetes 37 needs.
S3_EMULATOR_VENV := .cache/s3-emulator
S3_EMULATOR_STAMP := $(S3_EMULATOR_VENV)/.kubeloop-installed
$(S3_EMULATOR_STAMP): tests/s3-emulator.txt
	test -x $(S3_EMULATOR_VENV)/bin/python || $(BASE_PYTHON) -m venv $(S3_EMULATOR_VENV)
	$(S3_EMULATOR_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	@touch $@
s3-emulator: $(S3_EMULATOR_STAMP)

tools:
	bash hack/build-tools.sh

# The images are built by a Docker engine the script starts (and stops) when none runs, FROM a
# local Debian base: nothing is pulled (docs/images.md).
images:
	bash hack/images.sh build

images-load: setup
	bash hack/images.sh load

# Stops an engine left running (hack/images.sh up, or KUBELOOP_DOCKER_KEEP=1).
images-down:
	bash hack/images.sh down

lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

test: setup s3-emulator tools lint images
	$(PYTHON) -m pytest $(PYTEST_ARGS)

test-unit: setup
	$(PYTHON) -m pytest -m "not cluster" $(PYTEST_ARGS)

crds: setup
	$(PYTHON) -m kubeloop.crdgen

# The demo drives the cluster from this checkout's virtualenv: `images` builds what the node runs.
demo: setup tools images
	$(PYTHON) hack/demo.py up

demo-down:
	@if [ -x $(PYTHON) ]; then $(PYTHON) hack/demo.py down; else echo "nothing to remove: no $(VENV)"; fi

cluster-up: setup tools
	$(PYTHON) hack/devcluster.py up

cluster-down:
	python3 hack/devcluster.py down

cluster-status:
	python3 hack/devcluster.py status

deploy: tools
	@$(CLUSTER_ENV); \
	helm upgrade --install $(RELEASE) helm/kubeloop --namespace $(DEPLOY_NAMESPACE) \
	  --create-namespace \
	  --set image.repository=$(OPERATOR_REPOSITORY) --set image.tag=$(IMAGE_TAG) \
	  --set image.pullPolicy=IfNotPresent \
	  --set runtime.image.repository=$(RUNTIME_REPOSITORY) --set runtime.image.tag=$(IMAGE_TAG) \
	  --set runtime.image.pullPolicy=IfNotPresent \
	  $(DEPLOY_ARGS) $(HELM_ARGS) && \
	kubectl -n $(DEPLOY_NAMESPACE) rollout status deployment/$(RELEASE) --timeout=5m

# Removes everything the release made; the CRDs (and so every Kubeloop object) stay.
undeploy: tools
	@$(CLUSTER_ENV); helm uninstall $(RELEASE) --namespace $(DEPLOY_NAMESPACE) --wait

# kind runs its nodes as Docker containers from the kindest/node image: it needs a Docker engine
# that can pull that image. Machines that reach no container registry cannot start it.
kind-up:
	@command -v $(KIND) >/dev/null || { echo "kind is not installed: https://kind.sigs.k8s.io" >&2; exit 1; }
	@mkdir -p $(dir $(KIND_KUBECONFIG))
	$(KIND) create cluster --name $(KIND_CLUSTER) --config kind-config.yaml --kubeconfig $(KIND_KUBECONFIG)
	@echo "next: make kind-load && make deploy KUBECONFIG=$(KIND_KUBECONFIG)"

kind-load:
	$(KIND) load docker-image --name $(KIND_CLUSTER) \
	  $(OPERATOR_REPOSITORY):$(IMAGE_TAG) $(RUNTIME_REPOSITORY):$(IMAGE_TAG)

kind-down:
	$(KIND) delete cluster --name $(KIND_CLUSTER) --kubeconfig $(KIND_KUBECONFIG)
