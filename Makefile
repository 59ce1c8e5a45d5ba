# One-command set-up: `make test` and `make demo` create .venv, install everything, then run.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.vgsg-installed
TORCH ?= torch==2.13.0
export NUMBA_CACHE_DIR := $(CURDIR)/$(VENV)/numba_cache
export MPLBACKEND := Agg
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install test export-check nbtest pytest demo clean-nbs bench readme

$(STAMP): setup.py settings.ini
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"   # first, so nothing pulls a CUDA build
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps pytorch-fid==0.3.0   # only for a cross-check test; --no-deps keeps torchvision out
	touch $(STAMP)

install: $(STAMP)

# The library must be exactly what the notebooks export.
export-check: install
	rm -rf $(VENV)/vgsg-before && cp -r vgsg $(VENV)/vgsg-before
	$(BIN)/nbdev_export
	diff -r -x __pycache__ $(VENV)/vgsg-before vgsg || { echo "vgsg/ is out of sync with nbs/: run nbdev_export and commit"; exit 1; }

nbtest: install
	$(BIN)/nbdev_test --n_workers 2 --timing

pytest: install
	$(PY) -m pytest -q tests

test: export-check nbtest pytest

demo: install
	$(BIN)/vgsg demo -o out/demo

clean-nbs: install
	$(BIN)/nbdev_clean

bench: install
	$(PY) benchmarks/mel.py

# README.md is generated from nbs/index.ipynb (nbdev_readme needs Quarto, which cannot be installed offline).
readme: install
	$(BIN)/jupyter nbconvert --to markdown nbs/index.ipynb --stdout 2>/dev/null > README.md.tmp && mv README.md.tmp README.md
