# afm — everything bootstraps .venv/ itself on a machine with only Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-unit test-browser bench reliability lint migrate demo clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("afm needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	@$(BIN)/afm db upgrade
	@$(BIN)/afm demo load
	@$(BIN)/afm serve

migrate: $(STAMP)
	@$(BIN)/afm db upgrade

demo: migrate
	@$(BIN)/afm demo load

# Unit, API, SQLite and PostgreSQL integration tests in one run; browser tests in their own run
# (pytest-playwright's sync fixtures must not share a process with asyncio tests).
test: $(STAMP)
	@$(BIN)/ruff check app tests migrations
	@$(BIN)/python -m pytest tests --ignore=tests/browser --ignore=tests/benchmarks -q $(PYTEST_ARGS)
	@$(BIN)/python -m pytest tests/browser -q $(PYTEST_ARGS)

test-unit: $(STAMP)
	@$(BIN)/python -m pytest tests/unit -q

test-browser: $(STAMP)
	@$(BIN)/python -m pytest tests/browser -q

bench: $(STAMP)
	@$(BIN)/python -m tests.benchmarks

# Kill cycles, races, scale-out and webhook delivery on real servers, then the bad-input corpus and a
# longer API fuzz; every part runs even when an earlier one misses its goal.
reliability: $(STAMP)
	@status=0; \
	$(BIN)/python -m tests.reliability || status=1; \
	$(BIN)/python -m tests.badinput || status=1; \
	$(BIN)/python -m tests.fuzz --examples 25 --database sqlite || status=1; \
	$(BIN)/python -m tests.fuzz --examples 25 --database postgres || status=1; \
	exit $$status

lint: $(STAMP)
	@$(BIN)/ruff check app tests migrations
	@$(BIN)/ruff format --check app tests migrations

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
