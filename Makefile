# One entry point: `make demo` runs the demo on the embedded default, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint emulator seed iam-policies clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	PYTHONPATH=.:plugins $(BIN)/python -m include.demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not aws and not airflow and not e2e"

lint: $(STAMP)
	$(BIN)/ruff check .

emulator: $(STAMP)
	PYTHONPATH=.:plugins $(BIN)/python -m include.localaws.server

seed: $(STAMP)
	PYTHONPATH=.:plugins $(BIN)/python -m include.localaws.seed

iam-policies: $(STAMP)
	PYTHONPATH=.:plugins $(BIN)/python -m dynamoguard.iam_policies --out include/iam

clean:
	rm -rf $(VENV) .airflow .localaws .pytest_cache .ruff_cache
