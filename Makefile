# One task runner. `make run` and `make test` work on a fresh machine: they create the venv and
# install everything they need (including Debian's chromium for the browser tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCALE ?= demo
INBOX ?= var/inbox
WAREHOUSE ?= var/warehouse
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench venv test-deps chromium synth pipeline serve clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Debian's chromium for the Playwright browser tests (never a downloaded browser build).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

test-deps: $(VENV)/.installed-test chromium

synth: venv
	@if [ -d "$(INBOX)" ] && [ -n "$$(ls -A $(INBOX) 2>/dev/null)" ]; then \
	  echo "Using existing extracts in $(INBOX) (delete it to regenerate)"; \
	else $(BIN)/cmh synth --scale $(SCALE) --out $(INBOX); fi

run: synth
	$(BIN)/cmh pipeline run --if-changed --inbox $(INBOX) --warehouse $(WAREHOUSE)
	@$(BIN)/cmh demo-accounts --warehouse $(WAREHOUSE)
	@echo "Serving the dashboard on http://127.0.0.1:8050 (Ctrl-C to stop)"
	CMH_DEMO=1 $(BIN)/cmh serve --warehouse $(WAREHOUSE)

test: test-deps
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pipelines.registry --check

bench: venv
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_dashboard.py --scale icb

clean:
	rm -rf var .pytest_cache
