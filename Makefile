# The two setup commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install

$(BIN)/refinery: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/refinery

install: $(BIN)/refinery

demo: install
	$(BIN)/refinery curate examples/demo.yaml

test: install
	$(BIN)/python -m pytest
