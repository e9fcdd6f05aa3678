# Every target but `install` runs inside the repo's .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# This checkout's corpora and models: ../shared beside the repo (a user's project sets its own)
NERLIT_SHARED_DIR ?= $(abspath $(CURDIR)/../shared)
export NERLIT_DATA_DIR ?= $(NERLIT_SHARED_DIR)/data
export NERLIT_MODELS_DIR ?= $(NERLIT_SHARED_DIR)/models

.PHONY: install train test test-slow lint format clean wheel bench bench-train bench-tta bench-inference bench-serve

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -c constraints.txt -e ".[all,dev]"
	touch $@

## The main job: MiniLM on GMB, bf16 autocast, offline; tests the best checkpoint and prints the table.
train: install
	$(BIN)/python -m nerlit.train $(ARGS)

test: install
	$(BIN)/python -m pytest -q $(ARGS)

test-slow: install
	$(BIN)/python -m pytest -q -m slow $(ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist

## dist/nerlit-<version>-py3-none-any.whl, offline (no build isolation), from a clean build folder
wheel: install
	rm -rf build dist
	$(PIP) wheel -q --no-deps --no-build-isolation -w dist .
	rm -rf build

## Tagger vs the HF pipeline on 2,000 GMB test sentences: ARGS="--model DIR" (else fine-tunes MiniLM first)
bench-inference: install
	$(BIN)/python bench/inference.py $(ARGS)

## nerlit vs HF Trainer (defaults, length-grouped) vs Flair vs a bare loop, same data/model/steps:
## ARGS="--sentences 3000 --steps 60" (Flair's own virtualenv is built on first use)
bench-train: install
	$(BIN)/python bench/train_throughput.py $(ARGS)

## seconds to a 5-type dev F1 target, nerlit vs HF Trainer vs Flair, each its own recipe, same GMB:
## ARGS="--subset 8000 --target 0.78 --seeds 3" (defaults: all 38,367 sentences, 0.82, 3 seeds)
bench-tta: install
	$(BIN)/python bench/time_to_accuracy.py $(ARGS)

## nerlit serve under 1, 8, 32 concurrent clients vs in-process Tagger: ARGS="--model DIR [--backend B]"
bench-serve: install
	$(BIN)/python bench/serve.py $(ARGS)

## nerlit serve's RSS after ordinary traffic and maximum-size requests, against idle: ARGS="--model CKPT"
bench-serve-memory: install
	$(BIN)/python bench/serve_memory.py $(ARGS)

bench: bench-train bench-inference
