# One-command set-up: `make test` and `make demo` create .venv, install everything, then run.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.vgsg-installed
# torch for this machine's hardware, installed before everything else (nothing else then pulls another build):
#   TORCH        the requirement: a version pin (default) or a wheel file
#   TORCH_INDEX  the pip index it comes from (pip --index-url). PyTorch publishes one index per build: a CPU-only one
#                and one per CUDA version (their addresses are on pytorch.org's "Get started" page). `default` (or
#                empty where pip's configuration names an index, as here) leaves the choice to pip's configuration.
# Without an NVIDIA GPU (no nvidia-smi) and without any index configured, plain pip would fetch PyPI's Linux torch,
# the CUDA build with gigabytes of GPU libraries: `make install` stops and asks for TORCH_INDEX instead of doing that.
# e.g.  make install TORCH_INDEX=<PyTorch's CPU index>   |   make install TORCH_INDEX=default   (GPU machines: CUDA build)
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
export NUMBA_CACHE_DIR := $(CURDIR)/$(VENV)/numba_cache
export MPLBACKEND := Agg
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install test test-slow proc-nbs export-check nbtest pytest demo clean-nbs bench readme outputs torch-choice

# Refuse an implicit CUDA download on a machine without a GPU (see TORCH_INDEX above).
torch-choice:
	@if [ -z "$(TORCH_INDEX)" ] && ! command -v nvidia-smi >/dev/null 2>&1 && \
	    ! python3 -m pip config list 2>/dev/null | grep -qE '(index-url|find-links)='; then \
	  echo "make: no NVIDIA GPU and no pip index configured: plain pip would install PyPI's CUDA build of torch."; \
	  echo "      Choose: make install TORCH_INDEX=<PyTorch's CPU-only wheel index, see pytorch.org>  (or TORCH_INDEX=default)"; \
	  exit 1; fi

$(STAMP): setup.py settings.ini
	@$(MAKE) -s torch-choice
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(filter-out default,$(TORCH_INDEX)),--index-url $(TORCH_INDEX)) "$(TORCH)"   # first, so nothing pulls another build
	$(PY) -c "import torch; print('torch', torch.__version__, '(CUDA ' + torch.version.cuda + ')' if torch.version.cuda else '(CPU build)')"
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

test: export-check nbtest pytest proc-nbs

# nbdev's own processing of the notebooks for its docs (what nbdev_proc_nbs, nbdev_docs, nbdev_preview and
# nbdev_readme run first: every cell holding an import, every show_doc) on every notebook, into _proc/. Called as
# nbdev.serve.proc_nbs because the nbdev_proc_nbs command, where Quarto is missing, first tries to install it (sudo,
# network) and then runs `pip install -e .[dev]` with whatever pip is first on PATH.
proc-nbs: install
	$(PY) -c "from nbdev.serve import proc_nbs; proc_nbs(force=True)"

# Tests that take minutes, kept out of `make test`: every README command in order (tests/test_readme.py), and the
# wheel installed into a fresh virtual environment, then `vgsg demo` from another folder (tests/test_wheel.py).
test-slow: install
	VGSG_SLOW_TESTS=1 $(PY) -m pytest -q -s tests/test_readme.py tests/test_wheel.py

demo: install
	$(BIN)/vgsg demo -o out/demo

clean-nbs: install
	$(BIN)/nbdev_clean

bench: install
	$(PY) benchmarks/mel.py

# The notebooks keep their outputs (plots, tables, short audio) so a reader sees them without running anything:
# run them all (as nbdev_test does) and store what they show; each stays under 1.5 MB (scripts/execute_notebooks.py).
outputs: install
	$(PY) scripts/execute_notebooks.py

# README.md is generated from nbs/index.ipynb (nbdev_readme needs Quarto, which cannot be installed offline).
readme: install
	$(BIN)/jupyter nbconvert --to markdown nbs/index.ipynb --TemplateExporter.exclude_output=True --stdout 2>/dev/null | sed 's#](images/#](nbs/images/#g' > README.md.tmp && mv README.md.tmp README.md

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
# and spectrogram <img>s, draws again at the smallest and largest top-X; screenshots, the strip of those three draws
# (topx_strip.png: nbs/images/widgets_topx_strip.png is a copy) + result.json in out/browser/. About two minutes.
.PHONY: test-browser test-widgets-browser
test-browser: test-widgets-browser

test-widgets-browser: install docs-browser-deps
	nice $(PY) tests/browser/check_widgets.py --out out/browser
