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

# ---- Documentation site without Quarto: Sphinx + MyST-NB + Furo, all assets local (docs/README.md) ----
# `make docs`: executes every notebook (cached by content; `make docs DOCS_ARGS=--force` re-runs all) and
# renders _docs/. A notebook that fails is rendered with its error and listed at the end (not fatal).
# `make test-docs`: builds, then opens every page in headless Chromium (installs Debian's chromium and
# npm playwright-core on first use); fails on broken pages/links/images/audio, CDN use, or failed notebooks.
DOCS_STAMP := $(VENV)/.vgsg-docs-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
.PHONY: docs test-docs docs-browser-deps

$(DOCS_STAMP): $(STAMP) docs/requirements.txt
	$(PY) -m pip install -q -r docs/requirements.txt
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	nice $(PY) docs/build.py $(DOCS_ARGS)

docs-browser-deps:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }
	@test -f docs/browser/node_modules/playwright-core/package.json || \
	  (cd docs/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)

test-docs: docs docs-browser-deps
	$(PY) docs/check_site.py $(CHECK_ARGS)

# ---- End-to-end test of the sampling interface (nbs/12_widgets.ipynb) in a real JupyterLab ----
# `make test-browser`: JupyterLab on 127.0.0.1 (free port, no token) + headless Debian chromium driven by
# playwright-core (reuses docs/browser's, installed by docs-browser-deps): opens tests/browser/widgets_demo.ipynb
# with a tiny random model set, runs it, drags the top-X slider, clicks Generate, checks the new <audio> players
# and spectrogram <img>s; screenshots + result.json in out/browser/. About a minute.
.PHONY: test-browser test-widgets-browser
test-browser: test-widgets-browser

test-widgets-browser: install docs-browser-deps
	nice $(PY) tests/browser/check_widgets.py --out out/browser
