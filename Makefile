# Two commands on a fresh machine:  `make run` (the demo at http://127.0.0.1:5000)  and  `make test`.
# `make run` installs only what serving needs (requirements-serve.txt: ~440 MB, no TensorFlow);
# `make test` adds the training, test and benchmark stack (requirements-dev.txt: ~2.4 GB in all).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SERVE  := $(VENV)/.installed-serve
DEV    := $(VENV)/.installed-dev

.PHONY: run test test-fast browser benchmarks data clean-venv vendor-ort

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(SERVE): requirements-serve.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-serve.txt
	touch $(SERVE)

$(DEV): $(SERVE) requirements.txt requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $(DEV)

run: $(SERVE)
	$(BIN)/flask run

browser:
	bash .ci/install-browser.sh

test: $(DEV) browser
	$(BIN)/python -m pytest -q

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
