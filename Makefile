# Kootabase developer entry points. `make run` and `make test` install what they need.
VENV ?= .venv
PYTHON ?= python3
PYTEST_ARGS ?= -q

.PHONY: install run test lint bench clean nodes

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/kootabase serve --data-dir ./data

test: $(VENV)/.installed nodes
	bash scripts/check-services.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(VENV)/.installed
	$(VENV)/bin/kootabase bench engine

nodes:
	bash scripts/install-nodes.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis .benchmarks
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
