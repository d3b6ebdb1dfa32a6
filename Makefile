# The README's two commands: `make train` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install train test test-slow test-wheel bench eval-real clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable ".[dev,export]"
	touch $(STAMP)

install: $(STAMP)

## train the embedded default (synthetic printed text, CPU), evaluate it and print the metrics
train: $(STAMP)
	$(BIN)/ctcocr-train "callbacks=[default,real_lines]" $(ARGS)

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

## evaluate a checkpoint on the real printed lines of data/real_lines (measuring only, never tuning):
## prints the metrics, then samples, CER and exact match per kind of document and overall; the
## run folder (logs/eval_real/runs/<time>) gets by_group.csv and worst_lines.png.
## make eval-real CKPT=path/to.ckpt [ARGS="decoder=beam"]
ifneq ($(filter eval-real,$(MAKECMDGOALS)),)
ifeq ($(CKPT),)
$(error eval-real needs the checkpoint: make eval-real CKPT=path/to.ckpt)
endif
endif
eval-real: $(STAMP)
	$(BIN)/ctcocr-eval "ckpt_path='$(CKPT)'" data=folder data.val=data/real_lines split=val \
		temperature_split=null task_name=eval_real extras.print_config=false $(ARGS)

clean:
	rm -rf logs outputs multirun .pytest_cache
