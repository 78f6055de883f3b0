# gan_jax: `make train` installs into .venv and runs the default demo; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKDIR ?= runs/ring8

.PHONY: install train test test-all lint format bench bench-sweep bench-stream clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/python -m gan_jax train --config experiments/ring8.py --workdir $(WORKDIR)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q --dist worksteal -m "not slow"

test-all: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m gan_jax.bench

bench-sweep: $(STAMP)
	$(BIN)/python -m gan_jax.bench_sweep

bench-stream: $(STAMP)
	$(BIN)/python -m gan_jax.bench_stream

clean:
	rm -rf runs .pytest_cache .ruff_cache
