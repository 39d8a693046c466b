# attn — `make help` lists every target.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
ATTN := $(BIN)/attn
TV_VENV ?= $(HOME)/.cache/tv-venv

.DEFAULT_GOAL := help
.PHONY: help install demo test test-all test-data test-torchvision lint types format bench bench-startup peer-bench tables clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed ## create .venv and install attn (CPU torch) with the dev tools

demo: install ## prepare -> train -> eval -> visualize -> table on generated data (offline, ~2 min on 2 cores)
	$(ATTN) demo

test: lint types ## lint, types, then the default test suite (offline, no GPU, a few minutes on 2 cores)
	$(BIN)/python -m pytest -q

test-all: install ## every test, including slow ones and those that need ../shared/data
	$(BIN)/python -m pytest -q -m "not gpu"

test-data: install ## only the tests that read ../shared/data
	$(BIN)/python -m pytest -q -m data

$(TV_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(TV_VENV)
	$(TV_VENV)/bin/pip install -q "torch==2.14.1" "torchvision==0.29.1" -e ".[dev]"
	touch $@

test-torchvision: $(TV_VENV)/.installed ## the photo-encoder tests in a separate venv with torchvision (TV_VENV, 5.5 GB)
	OMP_NUM_THREADS=1 $(TV_VENV)/bin/python -m pytest -q tests/test_caption_torchvision.py tests/test_caption_data.py

lint: install ## ruff check + format check (the version pinned in pyproject.toml's dev extras)
	$(BIN)/ruff check attn_cli data_prep tests scripts
	$(BIN)/ruff format --check attn_cli data_prep tests scripts

types: install ## mypy, strict on attn_cli/attention, metrics and models ([tool.mypy] in pyproject.toml)
	$(BIN)/mypy

format: install ## ruff format + autofix
	$(BIN)/ruff format attn_cli data_prep tests scripts
	$(BIN)/ruff check --fix attn_cli data_prep tests scripts

bench: install ## time NMT training/decoding (tokens/s, sentences/s) -> results/bench/
	$(ATTN) bench nmt

bench-startup: install ## start-up CPU seconds of the light commands -> results/bench/startup-cpu.json
	$(BIN)/python scripts/bench_startup.py

peer-bench: ## run the JoeyNMT peer benchmark beside ours (needs ../shared/peers/joeynmt)
	bash scripts/peer_bench.sh

tables: install ## regenerate results/TABLES.md from the recorded results
	$(ATTN) table --all

clean: ## remove runs, prepared data, caches (keeps results/ and .venv)
	rm -rf runs data lightning_logs .pytest_cache .ruff_cache .mypy_cache
