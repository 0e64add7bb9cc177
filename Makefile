# The interface: `make demo` and `make test` work from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DASK_STAMP := $(VENV)/.installed-dask

.PHONY: setup demo test lint bench browser clean

# OpenSSL's headers let pip build flows/_pseudonym.c (the fast NIK pseudonymisation; without it
# ingest falls back to SQL, and the test that checks the fast path is built fails).
$(STAMP): pyproject.toml constraints.txt setup.py flows/_pseudonym.c flows/native/jkn_pseudonym.c flows/native/jkn_rules.c flows/native/jkn_rules.h flows/native/jkn_repeats.c flows/native/jkn_repeats.h
	@test -f /usr/include/openssl/sha.h || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev >/dev/null; } || echo "no OpenSSL headers: NIKs will be pseudonymised in SQL (slower)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# The tests also run ingest on a local Dask cluster (tests/test_dask_identical.py): the `dask` extra.
$(DASK_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,dask]'
	touch $(DASK_STAMP)

demo: setup
	$(BIN)/jkn demo

# Headless Chromium for the report tests (Debian's package; the machine has no other browser source).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The linters first (seconds), then the suite on TEST_WORKERS processes (pytest-xdist), a test file
# to a worker: CI fails on either. `make test TEST_WORKERS=0` runs it in this one process.
TEST_WORKERS ?= 2
test: $(DASK_STAMP) browser lint
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

lint: setup
	$(BIN)/ruff check flows tests bench
	$(BIN)/ruff format --check flows tests bench
	$(BIN)/sqlfluff lint sql --processes 2 --nocolor

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data .pytest_cache
