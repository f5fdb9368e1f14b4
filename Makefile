# The two commands of the README, each doing its own set-up on a fresh machine:
#   make demo   the main job on the embedded default model
#   make test   the whole test suite
# `make setup` alone creates .venv (if missing) and installs flip with its pinned torch pair.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.flip-installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test test-fast clean-venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch torchvision
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,eval,naming,search,app,onnx]"
	$(BIN)/python -m pip install -q --no-deps facenet-pytorch
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/flip demo

test: setup
	HF_HOME=$$(mktemp -d) $(BIN)/python -m pytest -q

test-fast: setup
	HF_HOME=$$(mktemp -d) $(BIN)/python -m pytest -q -m "not slow"

clean-venv:
	rm -rf $(VENV)
