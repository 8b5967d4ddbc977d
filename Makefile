# oshmon — two commands: `make demo` and `make test`. Both create .venv/ when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test check fmt services bench bench-storm conformance clean help

help:
	@echo "make demo   - install into .venv and run the whole system on embedded defaults"
	@echo "make test   - install, start real services, run ruff + mypy + every test"
	@echo "make bench  - run the benchmarks and write docs/benchmarks.md"
	@echo "make bench-storm - only the alert-storm and memory-per-channel benchmarks (issue 15)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/oshmon demo

services:
	@sh scripts/ensure-services.sh

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: $(STAMP) services check
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory conformance

# The product-contract check shipped beside the project (../shared/checks), when present.
conformance: $(STAMP)
	@if [ -f ../shared/checks/contract.py ]; then \
		$(BIN)/python ../shared/checks/contract.py; \
	else echo "conformance: ../shared/checks not present, skipped"; fi

bench: $(STAMP) services
	$(BIN)/python -m bench

bench-storm: $(STAMP) services
	$(BIN)/python -m bench storm cardinality

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
