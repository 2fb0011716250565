# The two set-up commands of the README are `make demo` and `make test`; both install
# first. Each install step is stamped by the hash of its inputs, so a re-run with
# nothing changed costs a few seconds.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONF ?= conf/local.yaml
PROFILE ?=
LOCK := requirements/constraints.txt
REQ_HASH := $(shell cat requirements/base.in requirements/dev.in $(LOCK) setup.py 2>/dev/null | sha1sum | cut -c1-12)
PY_STAMP := $(VENV)/.stamp-py-$(REQ_HASH)
HVD_STAMP := $(VENV)/.stamp-horovod-$(shell cat infra/build_horovod.sh $(LOCK) | sha1sum | cut -c1-12)
JARS_STAMP := .jars/.stamp-$(shell cat infra/jars/pom.xml infra/jars/fetch.sh | sha1sum | cut -c1-12)
PYTEST_ARGS ?=
# Two pytest-xdist workers (tests/conftest.py groups the tests; PYTEST_WORKERS=0 runs them in
# this process): 8 % faster than one process on 2 cores (docs/BENCHMARKS.md), more on more cores.
PYTEST_WORKERS ?= 2
BROWSER_STAMP := $(VENV)/.stamp-browser-$(shell cat infra/ensure_browser.sh infra/ensure_apt.sh | sha1sum | cut -c1-12)
KERNEL_STAMP := $(VENV)/.stamp-kernel-$(REQ_HASH)
BLAS_STAMP := $(VENV)/.stamp-blas-$(shell cat infra/ensure_blas.sh infra/ensure_apt.sh | sha1sum | cut -c1-12)

export SPARK_LOCAL_IP := 127.0.0.1
export PYTHONUNBUFFERED := 1

.PHONY: report notebooks-sync
.PHONY: cluster-up cluster-down cluster-submit pack-env k8s-manifests
.PHONY: install demo test mlflow-ui lock java bench wheel clean-lake help

help:
	@echo "make demo      install, then run the pipeline on the vendored data (conf: $(CONF); PROFILE=fast for the quick settings)"
	@echo "make test      install, then run the test suite"
	@echo "make report    build the HTML run report of the lake (reports/latest.html next to the lake)"
	@echo "make mlflow-ui serve the MLflow UI of the local store on http://127.0.0.1:5000"
	@echo "make bench     run the benchmark scripts in bench/"
	@echo "make lock      re-resolve requirements/*.in into $(LOCK)"
	@echo "make cluster-up / cluster-submit / cluster-down   loopback Spark standalone cluster (docs/CLUSTER.md)"
	@echo "make pack-env  pack the venv for executors (dist/marketlab-env.tar.gz)"

install: java $(PY_STAMP) $(HVD_STAMP) $(JARS_STAMP) $(BROWSER_STAMP) $(BLAS_STAMP) $(KERNEL_STAMP)

java:
	@bash infra/ensure_java.sh

$(PY_STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -U pip wheel setuptools
	$(BIN)/python -m pip install -q --disable-pip-version-check -c $(LOCK) -r requirements/base.in -r requirements/dev.in
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.stamp-py-* && touch $@

$(HVD_STAMP): $(PY_STAMP)
	@bash infra/build_horovod.sh $(BIN)/python
	@rm -f $(VENV)/.stamp-horovod-* && touch $@

$(JARS_STAMP): $(PY_STAMP)
	@PYTHON=$(BIN)/python bash infra/jars/fetch.sh .jars >/dev/null
	@touch $@

# Headless Chromium + chromedriver for the report's browser test (apt; skipped with a message
# where apt or root is not available: the test then skips).
$(BROWSER_STAMP):
	@bash infra/ensure_browser.sh
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
	  mkdir -p $(VENV) && rm -f $(VENV)/.stamp-browser-* && touch $@; fi

# Native BLAS/LAPACK for Spark ML (apt; optional, Spark falls back to Java kernels without it).
$(BLAS_STAMP):
	@bash infra/ensure_blas.sh
	@if PATH=$$PATH:/usr/sbin:/sbin ldconfig -p 2>/dev/null | grep -q 'libblas.so.3 '; then \
	  mkdir -p $(VENV) && rm -f $(VENV)/.stamp-blas-* && touch $@; fi

# The notebooks' kernel: "python3" pointing at this venv's interpreter (installed into the venv).
$(KERNEL_STAMP): $(PY_STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (marketlab)" >/dev/null
	@rm -f $(VENV)/.stamp-kernel-* && touch $@

demo: install
	$(BIN)/marketlab pipeline --conf $(CONF) $(if $(PROFILE),--profile $(PROFILE))

test: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS)

report: install
	$(BIN)/python jobs/report.py --conf $(CONF)

notebooks-sync:
	$(BIN)/jupytext --sync notebooks/*.py

mlflow-ui: install
	$(BIN)/marketlab mlflow-ui --conf $(CONF)

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Built from a clean copy of the sources (a stale build/ folder cannot leak into it).
wheel: install
	$(BIN)/python -m marketlab.cluster build-wheel --out dist

# --- cluster (docs/CLUSTER.md) -----------------------------------------------------------------
# Loopback standalone cluster: master + 2 workers + MLflow server on 127.0.0.1, state in
# $(CLUSTER_ROOT); `make cluster-submit` runs every stage there through spark-submit.
CLUSTER_ROOT ?= /tmp/marketlab-cluster
cluster-up: install
	MARKETLAB_CLUSTER_ROOT=$(CLUSTER_ROOT) bash infra/cluster/up.sh

cluster-down:
	MARKETLAB_CLUSTER_ROOT=$(CLUSTER_ROOT) bash infra/cluster/down.sh

cluster-submit: wheel
	$(BIN)/marketlab pipeline-submit --conf conf/cluster.yaml $(if $(PROFILE),--profile $(PROFILE))

# The venv packed for executors (venv-pack): dist/marketlab-env.tar.gz, for --env-archive.
pack-env: install
	$(BIN)/python infra/cluster/pack_env.py --venv $(VENV) --output dist/marketlab-env.tar.gz

# Spark Operator manifests (infra/k8s) and the Airflow DAG (infra/airflow) from the stage graph.
k8s-manifests: install
	$(BIN)/marketlab k8s-manifests

lock:
	@rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install -q -U pip
	.lockenv/bin/python -m pip install -q -r requirements/base.in -r requirements/dev.in
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^marketlab' > $(LOCK)
	@rm -rf .lockenv

clean-lake:
	rm -rf lake mlflow
