# The two set-up commands of the README are `make demo` and `make test`; both install
# first. Each install step is stamped by the hash of its inputs, so a re-run with
# nothing changed costs a few seconds.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONF ?= conf/local.yaml
LOCK := requirements/constraints.txt
REQ_HASH := $(shell cat requirements/base.in requirements/dev.in $(LOCK) setup.py 2>/dev/null | sha1sum | cut -c1-12)
PY_STAMP := $(VENV)/.stamp-py-$(REQ_HASH)
HVD_STAMP := $(VENV)/.stamp-horovod-$(shell cat infra/build_horovod.sh $(LOCK) | sha1sum | cut -c1-12)
JARS_STAMP := .jars/.stamp-$(shell cat infra/jars/pom.xml infra/jars/fetch.sh | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

export SPARK_LOCAL_IP := 127.0.0.1
export PYTHONUNBUFFERED := 1

.PHONY: install demo test mlflow-ui lock java bench wheel clean-lake help

help:
	@echo "make demo      install, then run the pipeline on the vendored data (conf: $(CONF))"
	@echo "make test      install, then run the test suite"
	@echo "make mlflow-ui serve the MLflow UI of the local store on http://127.0.0.1:5000"
	@echo "make bench     run the benchmark scripts in bench/"
	@echo "make lock      re-resolve requirements/*.in into $(LOCK)"

install: java $(PY_STAMP) $(HVD_STAMP) $(JARS_STAMP)

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

demo: install
	$(BIN)/marketlab pipeline --conf $(CONF)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

mlflow-ui: install
	$(BIN)/marketlab mlflow-ui --conf $(CONF)

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

wheel: install
	$(BIN)/python -m build --wheel --no-isolation --outdir dist .

lock:
	@rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install -q -U pip
	.lockenv/bin/python -m pip install -q -r requirements/base.in -r requirements/dev.in
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^marketlab' > $(LOCK)
	@rm -rf .lockenv

clean-lake:
	rm -rf lake mlflow
