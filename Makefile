# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= out/demo

.PHONY: demo test venv test-deps services-up services-down bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned to the CPU wheel (2.13.0); an unpinned torch would pull a multi-GB CUDA build.
$(VENV)/.installed: setup.py | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: setup.py $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed
test-deps: $(VENV)/.installed-test

## make demo: install, then render a generated toy-world video end to end on the embedded default.
demo: venv
	$(BIN)/foley demo --out-dir $(OUT)

## make test: install test deps, start Redis + PostgreSQL + S3 (moto) on loopback, run pytest, stop them.
test: test-deps
	VENV=$(VENV) scripts/run_tests.sh $(PYTEST_ARGS)

services-up: test-deps
	VENV=$(VENV) scripts/services.sh start

services-down:
	scripts/services.sh stop

bench: venv
	$(BIN)/python bench/media_bench.py && $(BIN)/python bench/render_bench.py realtime

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis *.egg-info
