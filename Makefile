# Kootabase developer entry points. `make run` and `make test` install what they need.
VENV ?= .venv
PYTHON ?= python3
PYTEST_ARGS ?= -q

# Two install stamps: `make run` needs the runtime dependencies only; the dev extras (pytest,
# ruff, ccxt, matplotlib, ...) are installed for `make test`, `make lint` and `make bench`.
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install install-runtime run test lint bench clean nodes

install: $(DEV_STAMP)

install-runtime: $(RUNTIME_STAMP)

$(RUNTIME_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -e .
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP)
	$(VENV)/bin/python -m pip install -e '.[dev]'
	touch $@

run: $(RUNTIME_STAMP)
	$(VENV)/bin/kootabase serve --data-dir ./data --demo

test: $(DEV_STAMP) nodes
	bash scripts/check-services.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(DEV_STAMP)
	$(VENV)/bin/kootabase bench engine

nodes:
	bash scripts/install-nodes.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis .benchmarks
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
