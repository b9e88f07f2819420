# ML Fundamentals: `make book` and `make test` each do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NB ?=
SHIFTS ?= 1 2 3 4 5
export PATH := $(CURDIR)/$(BIN):$(PATH)
export OMP_NUM_THREADS ?= 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

PYTEST := $(BIN)/python -m pytest -n auto --dist loadfile

.PHONY: install book test test-lax seeds lab outputs bench checkpoints speech-data clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-data.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-data.txt
	@touch $@

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "The site is in _build/html (open _build/html/index.html)."

test: $(STAMP)
	$(PYTEST) --nbval

test-lax: $(STAMP)
	$(PYTEST) --nbval-lax

# every chapter again with each explicit seed shifted by each of SHIFTS (only errors fail)
seeds: $(STAMP)
	$(BIN)/python scripts/seeds.py $(NB) --shifts $(SHIFTS)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

outputs: $(STAMP)
	$(BIN)/python scripts/execute_notebooks.py $(NB)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# the small checkpoints that chapters load instead of training for minutes (data/)
checkpoints: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python scripts/train_ntm.py
	OMP_NUM_THREADS=1 $(BIN)/python scripts/ntm_spread.py
	OMP_NUM_THREADS=1 $(BIN)/python scripts/train_speech.py
	OMP_NUM_THREADS=1 $(BIN)/python scripts/train_lm.py

# the spoken-digits features in data/speech (needs Debian's espeak-ng; tests and chapters do not)
speech-data: $(STAMP)
	@command -v espeak-ng >/dev/null || { echo "speech-data needs espeak-ng: apt-get install espeak-ng"; exit 1; }
	$(BIN)/python scripts/make_speech_data.py

clean:
	rm -rf _build
