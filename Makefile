# Kootabase developer entry points. `make run` and `make test` install what they need.
VENV ?= .venv
PYTHON ?= python3
# --durations: every run ends with its 30 slowest tests, so the suite's budget is watched.
PYTEST_ARGS ?= -q --durations=30

# Two install stamps: `make run` needs the runtime dependencies only; the dev extras (pytest,
# ruff, ccxt, matplotlib, ...) are installed for `make test`, `make lint` and `make bench`.
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
# The pages (web/, built by npm + Vite into web/dist; not committed): rebuilt when a source changes.
WEB_STAMP := web/dist/.built
WEB_SOURCES := web/package.json web/package-lock.json web/vite.config.ts web/tsconfig.json \
	$(wildcard web/*.html web/src/*)

.PHONY: install install-runtime run test lint bench clean nodes web screenshots

install: $(DEV_STAMP)

install-runtime: $(RUNTIME_STAMP)

$(RUNTIME_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -e .
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP)
	$(VENV)/bin/python -m pip install -e '.[dev]'
	touch $@

$(WEB_STAMP): $(WEB_SOURCES)
	bash scripts/build-web.sh

web: $(WEB_STAMP)

run: $(RUNTIME_STAMP) $(WEB_STAMP)
	$(VENV)/bin/kootabase serve --data-dir ./data --demo

# The whole suite in one pytest process. It once ran in six (a stopped test server kept its
# ~230 MB of engine tables: gateway/gctune.py, gateway/httpapp.py); stopped servers are freed now
# (tests/test_server_release.py), so the process's memory follows the servers alive at once
# (14 server-heavy files: peak RSS 3.2 GB, was 9.6 GB), not how many tests ran before.
test: $(DEV_STAMP) nodes $(WEB_STAMP)
	bash scripts/check-services.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(DEV_STAMP)
	$(VENV)/bin/kootabase bench engine

# README screenshots of each page (docs/img/) and the pages' load times with a 1,000-level book.
screenshots: $(DEV_STAMP) nodes $(WEB_STAMP)
	$(VENV)/bin/python -m bench.web_pages --screenshots docs/img

nodes:
	bash scripts/install-nodes.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis .benchmarks
	rm -rf web/node_modules web/dist test-artifacts
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
