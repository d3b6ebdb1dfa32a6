# The README's two commands: `make train` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install train test test-slow test-wheel bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable ".[dev,export]"
	touch $(STAMP)

install: $(STAMP)

## train the embedded default (synthetic printed text, CPU), evaluate it and print the metrics
train: $(STAMP)
	$(BIN)/ctcocr-train $(ARGS)

## fast tests (what CI runs)
test: $(STAMP)
	$(BIN)/python -m pytest

## the built wheel in a fresh venv (not editable): 20 training steps and a prediction from a temp
## folder (.ci/wheel_smoke.sh; needs no .venv, about 4 minutes, most of it installing torch)
test-wheel:
	PYTHON=$(PYTHON) bash .ci/wheel_smoke.sh

## long tests: training to an accuracy, resume, DDP with 2 CPU processes
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

## CTC loss benchmark: built-in vs ours (table + JSON)
bench: $(STAMP)
	$(BIN)/python scripts/bench_ctc.py --json logs/bench_ctc.json

clean:
	rm -rf logs outputs multirun .pytest_cache
