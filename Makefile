# Two commands matter: `make lab` runs the workshop, `make test` runs every test. Both bootstrap .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAB_STAMP := $(VENV)/.installed-lab

.PHONY: lab test venv lint unit down site reference screenshots clean help

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# `pip install .` is the library alone (what a workbench needs); the extras add the lab (`lab`: API server,
# simulators, JupyterLab) and the test and lint tools (`dev`, which includes `lab`).
$(LAB_STAMP): pyproject.toml
	if [ $(STAMP) -nt pyproject.toml ]; then touch $(LAB_STAMP); else \
	  { test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); } && \
	  $(BIN)/python -m pip install --quiet --upgrade pip && \
	  $(BIN)/python -m pip install --quiet -e '.[lab]' && touch $(LAB_STAMP); fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(LAB_STAMP)

venv: $(STAMP)  ## create or update .venv with the project, the lab and the dev tools

# The notebooks' `!oc` cells: OpenShift AI workbench images ship `oc`; the lab provides a shim over kubectl.
$(BIN)/oc: llmd_lab/lab/ocshim.py | $(LAB_STAMP)
	$(BIN)/python -m llmd_lab.lab.ocshim --install $(BIN)

lab: $(LAB_STAMP) $(BIN)/oc  ## start the local lab and JupyterLab on notebook 00 as attendee user1's workbench (127.0.0.1 only)
	$(BIN)/llmd-lab up
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/llmd-lab workbench --user user1 -- \
	  $(abspath $(BIN))/jupyter lab --ip=127.0.0.1 --no-browser --ServerApp.root_dir=$(abspath notebooks) \
	  --LabApp.default_url='/lab/tree/00-connect-and-orient.ipynb' --allow-root

lint: $(STAMP)  ## ruff and the import-linter contracts
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# inference-perf (kubernetes-sigs) needs Python >= 3.12, so it gets its own venv when a python3.12 is on the
# machine; without one its live test skips and says how to install it.
IP_VENV := .venv-inference-perf
PYTHON312 ?= $(shell for p in python3.12 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12; do \
  if $$p -c '' 2>/dev/null; then command -v $$p; break; fi; done)

$(IP_VENV)/.installed:
	if [ -n "$(PYTHON312)" ]; then \
	  $(PYTHON312) -m venv $(IP_VENV) && $(IP_VENV)/bin/python -m pip install --quiet inference-perf==0.7.0 && \
	  touch $@; else echo "no python3.12: the inference-perf test will skip"; fi

test: lint $(IP_VENV)/.installed  ## lint, then the whole pytest suite (unit, lab integration, notebooks, assets, site)
	if [ -x $(IP_VENV)/bin/inference-perf ]; then export INFERENCE_PERF=$(abspath $(IP_VENV))/bin/inference-perf; fi; \
	  $(BIN)/pytest

unit: $(STAMP)  ## the fast tests only
	$(BIN)/pytest -m "not slow and not notebooks"

down: $(LAB_STAMP)  ## stop the local lab
	$(BIN)/llmd-lab down

clean:  ## remove the venv and caches
	rm -rf $(VENV) $(IP_VENV) .pytest_cache .ruff_cache

# The course site (antora/): Antora from npm, pinned by antora/package-lock.json; the UI bundle is antora/ui.
antora/node_modules/.package-lock.json: antora/package.json antora/package-lock.json
	cd antora && npm ci --no-audit --no-fund

site: antora/node_modules/.package-lock.json $(STAMP)  ## generate the notebook pages, build the course site (offline)
	$(BIN)/python -m llmd_lab.course.site
	cd antora && node_modules/.bin/antora antora-playbook.yml
	@echo "site: file://$(abspath antora/build/site/index.html)"

# The executed reference notebooks the site publishes (and takes each page's key chart from): the CI notebook
# run, first pass, on a fresh lab. Slow (every notebook in order); run it when a notebook's output changed.
REFERENCE := antora/modules/ROOT/attachments/reference
reference: $(STAMP)  ## re-run the notebooks on a fresh lab and keep the executed copies for the site
	LLMD_LAB_REFERENCE_DIR="$(abspath $(REFERENCE))" $(BIN)/pytest tests/notebooks/test_execute_notebooks.py \
	  -k test_first_run_as_an_attendee -p no:cacheprovider

# Screenshots for review (docs/screenshots/): every page of the built site, and every reference notebook as
# JupyterLab renders it. Needs chromium (apt-get install -y chromium).
screenshots: $(STAMP) antora/node_modules/.package-lock.json  ## headless-Chromium screenshots of the site and JupyterLab
	$(BIN)/python -m llmd_lab.course.site
	$(BIN)/python tests/site/site_screenshots.py docs/screenshots
	$(BIN)/python tests/notebooks/screenshots.py docs/screenshots $(REFERENCE)/*.ipynb
