# One-command entry points. Each target creates .venv on first use and installs what is
# missing; a second run reinstalls nothing (the stamp file is newer than pyproject.toml).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= paper
DEVICE ?= auto

.PHONY: setup system-deps test book lint clean-book

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	@touch $(STAMP)

setup: $(STAMP)

# System packages some tests use (Chromium for the book's browser check, PostgreSQL for shared
# tuning storage); installed with apt-get when missing and possible, else those tests skip.
system-deps:
	@echo "system packages for some tests: Chromium (book browser check), PostgreSQL (shared storage);"
	@echo "  installed with apt-get when missing and possible (root or sudo), else those tests skip"
	@bash scripts/install_chromium.sh >/dev/null 2>&1 \
		|| echo "note: Chromium could not be installed; the book's browser check will be skipped"
	@bash scripts/postgres_server.sh install >/dev/null 2>&1 \
		|| echo "note: PostgreSQL could not be installed; its tests will be skipped"

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

book: $(STAMP)
	$(BIN)/python -m deepstock.tools.book --profile $(PROFILE) --device $(DEVICE)

lint: $(STAMP)
	$(BIN)/ruff check deepstock tests
	$(BIN)/ruff format --check deepstock tests

clean-book:
	rm -rf _build book/generated
