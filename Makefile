# Two commands on a fresh machine:  `make run` (the demo at http://127.0.0.1:5000)  and  `make test`.
# `make run` installs only what serving needs (requirements-serve.txt: ~540 MB, PyAV for video included);
# `make test` adds the training, test and benchmark stack (requirements-dev.txt: ~1.6 GB in all with
# PyTorch's CPU build; ~1.7 GB once a full test run has written its bytecode). On a machine without a GPU, get that build instead of PyPI's CUDA one
# (several GB more) with one variable:  make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
# `make test-fast` skips the browser tests (no Chromium, no root).
# `make lint` runs ruff and mypy with the settings in pyproject.toml (CI runs it before the tests).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SERVE  := $(VENV)/.installed-serve
DEV    := $(VENV)/.installed-dev
# A package index for torch alone (e.g. PyTorch's CPU wheels); empty: torch comes from PyPI like the rest.
TORCH_INDEX ?=
TORCH_PIN   := $(shell sed -n 's/^\(torch==[^ #]*\).*/\1/p' requirements-dev.txt)

.PHONY: run test test-fast lint browser nginx benchmarks data clean-venv vendor-ort

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(SERVE): requirements-serve.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-serve.txt
	touch $(SERVE)

# --no-compile: pip would byte-compile every module of every package (~260 MB, most never imported);
# Python writes the bytecode of what a run imports on its own.
$(DEV): $(SERVE) requirements.txt requirements-dev.txt
	$(if $(TORCH_INDEX),$(BIN)/pip install -q --no-compile --index-url $(TORCH_INDEX) "$(TORCH_PIN)")
	$(BIN)/pip install -q --no-compile -r requirements-dev.txt
	touch $(DEV)

run: $(SERVE)
	$(BIN)/flask run

browser:
	bash .ci/install-browser.sh

# nginx for tests/app/test_server.py's reverse-proxy tests, installed as CI installs it. Without root
# (or sudo) it cannot be: those tests then skip, and pytest's summary (-ra, pytest.ini) ends with one
# "SKIPPED [N] ... nginx is not installed" line that counts them.
nginx:
	@bash .ci/install-nginx.sh || echo "make: nginx could not be installed; the tests behind nginx will be SKIPPED (counted at the end)"

test: $(DEV) browser nginx
	$(BIN)/python -m pytest -q

# Lint and types: ruff (rules chosen in pyproject.toml) and mypy on model_core/, app/ and the entry
# points. `ruff format --check` joins once the code base has had its one formatting pass.
lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-fast: $(DEV)
	$(BIN)/python -m pytest -q --ignore=tests/e2e

benchmarks: $(DEV)
	$(BIN)/python -m benchmarks all

# What training data is there, and what is missing (python -m training data).
data: $(DEV)
	$(BIN)/python -m training data

clean-venv:
	rm -rf $(VENV)

# Refresh private mode's vendored onnxruntime-web (static/vendor/, committed) from npm at the pinned
# version; only needed to change that version (needs npm).
vendor-ort:
	bash deploy/vendor-onnxruntime-web.sh
