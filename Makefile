# One-command entry points. Each target creates .venv on first use and installs what is
# missing; a second run reinstalls nothing (the stamp file is newer than pyproject.toml).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= quick
DEVICE ?= auto

.PHONY: setup test book lint clean-book

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	@touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

book: $(STAMP)
	$(BIN)/python -m deepstock.book --profile $(PROFILE) --device $(DEVICE)

lint: $(STAMP)
	$(BIN)/ruff check deepstock tests
	$(BIN)/ruff format --check deepstock tests

clean-book:
	rm -rf _build book/generated
