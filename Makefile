# The two setup commands of the README: `make demo` and `make test`. Both install what is missing first:
# Tesseract OCR from Debian's packages (skipped when present), then .venv with refinery and its dependencies.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: demo test install system

system:
	@if ! command -v tesseract >/dev/null 2>&1 || ! tesseract --list-langs 2>/dev/null | grep -qx eng; then \
		echo "installing Tesseract OCR (Debian packages tesseract-ocr, tesseract-ocr-eng)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq tesseract-ocr tesseract-ocr-eng >/dev/null; \
	fi

$(BIN)/refinery: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/refinery

install: system $(BIN)/refinery

demo: install
	cd examples && ../$(BIN)/refinery run run.yaml

test: install
	$(BIN)/python -m pytest
