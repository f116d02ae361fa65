# genlab: `make train MODEL=dcgan`, `make test`. The first use creates .venv and installs everything.
SHELL := /bin/bash
VENV ?= .venv
PYTHON := $(VENV)/bin/python
MODEL ?= dcgan
ARGS ?=
TRIALS ?= 20
COUNT ?=
RUNS ?=
RESUME ?=
OUT ?=
MODELS := $(sort $(basename $(notdir $(wildcard conf/experiment/*.yaml))))
export DATA_ROOT ?= data
CACHE_DIR := $(or $(GENLAB_CACHE_DIR),.cache)
# What `make clean` deletes: run folders, the feature-classifier and real-feature caches, tool caches.
CLEAN_PATHS := outputs lightning_logs wandb $(CACHE_DIR) .pytest_cache .ruff_cache

.DEFAULT_GOAL := help
.PHONY: help install train evaluate sample sweep sweep-local compare test test-fast lint format bench bench-evaluate \
	clean check-model check-ckpt

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'
	@echo "  models: $(MODELS)"
	@echo "  ARGS, e.g.: trainer.max_steps=500 (training batches, GANs too) trainer.max_epochs=3"
	@echo "             trainer.val_check_interval=200 trainer.gradient_clip_val=1.0 'callbacks=[default,early_stopping]'"

$(VENV)/.installed: pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## Create .venv and install genlab with its dependencies

check-model:
	@[ -f conf/experiment/$(MODEL).yaml ] || { echo "Unknown model '$(MODEL)'. Available: $(MODELS)" >&2; exit 2; }

train: check-model install ## Train MODEL (one of the models below) with Hydra overrides in ARGS [RESUME=<run folder>]
	$(PYTHON) train.py experiment=$(MODEL) $(if $(RESUME),resume=$(RESUME) hydra.run.dir=$(RESUME)) $(ARGS)

check-ckpt:
	@[ -n "$(CKPT)" ] || { echo "Say which checkpoint: make $(MAKECMDGOALS) CKPT=outputs/<model>/<run>/checkpoints/last.ckpt" >&2; exit 2; }

evaluate: check-ckpt install ## FID/IS/KID, precision/recall, coverage, NLL of CKPT=<file> [N=10000]; JSON beside it
	$(PYTHON) evaluate.py 'ckpt_path=$(CKPT)' $(if $(N),evaluate.num_samples=$(N)) $(ARGS)

sample: check-ckpt install ## Write a grid of N=64 samples of CKPT=<file> beside it
	$(PYTHON) evaluate.py mode=sample 'ckpt_path=$(CKPT)' grid_samples=$(or $(N),64) $(ARGS)

sweep: check-model install ## W&B sweep of conf/sweep/MODEL.yaml plus an agent (COUNT= runs); needs W&B online
	$(PYTHON) -m genlab.sweeps wandb $(MODEL) $(if $(COUNT),--count $(COUNT))

sweep-local: check-model install ## The same search space offline: Optuna over TRIALS= trials, ARGS= overrides
	$(PYTHON) -m genlab.sweeps local $(MODEL) --trials $(TRIALS) $(ARGS)

compare: install ## Curves, parallel coordinates and a table of runs: RUNS='outputs/dcgan/*' [OUT=dir] [TABLE='evaluate/fid ...']
	@[ -n "$(RUNS)" ] || { echo "Name the runs: make compare RUNS='outputs/dcgan/2026-*' (folders, globs or a multirun folder)" >&2; exit 2; }
	$(PYTHON) -m genlab.compare $(RUNS) $(if $(OUT),--out $(OUT)) $(if $(TABLE),--table $(foreach column,$(TABLE),'$(column)'))

test: install ## Run every test, the real-data integration tests included
	$(PYTHON) -m pytest

test-fast: install ## Run the tests that take seconds
	$(PYTHON) -m pytest -m "not slow"

lint: install ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## ruff fix and format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install ## images/second of the DCGAN: Lightning module vs a plain PyTorch loop
	$(PYTHON) benchmarks/gan_throughput.py $(ARGS)

bench-evaluate: install ## seconds of make evaluate with a cold and a warm real-feature cache (N=10000)
	$(PYTHON) benchmarks/evaluation_cache.py $(ARGS)

clean: ## Delete outputs/, caches (.cache/ or GENLAB_CACHE_DIR), wandb/, lightning_logs/, tool caches
	@echo "Deleting: $(wildcard $(CLEAN_PATHS)) and __pycache__ folders (keeps .venv, data and DATA_ROOT)"
	rm -rf $(CLEAN_PATHS)
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
