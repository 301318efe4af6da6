# Roster: `make run` starts it, `make test` checks it. Both create .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Roster needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

run: $(VENV)/.installed
	$(BIN)/roster db upgrade
	$(BIN)/roster serve --demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: lint
	@if [ -z "$$ROSTER_TEST_POSTGRES_URL" ]; then \
		echo "ROSTER_TEST_POSTGRES_URL is not set: the PostgreSQL half of the suite is skipped"; fi
	$(BIN)/pytest

# The SCIM benchmark drives the server with Debian's wrk (httpx, its fallback, needs a core of its
# own), and the provisioning log's cost is counted by valgrind's callgrind; both are installed here
# when missing and we may (root, as in CI), else the fallback is used and the count left out.
bench: $(VENV)/.installed-dev
	@command -v wrk >/dev/null || { [ "$$(id -u)" -eq 0 ] && \
		{ apt-get install -y -q wrk || { apt-get update -q && apt-get install -y -q wrk; }; }; } || \
		echo "wrk is not installed (apt-get install wrk): the SCIM benchmark uses httpx"
	@command -v valgrind >/dev/null || { [ "$$(id -u)" -eq 0 ] && \
		{ apt-get install -y -q valgrind || { apt-get update -q && apt-get install -y -q valgrind; }; }; } || \
		echo "valgrind is not installed (apt-get install valgrind): the log's cost is not counted"
	$(BIN)/python bench/import_bench.py $(if $(ROSTER_TEST_POSTGRES_URL),--postgres $(ROSTER_TEST_POSTGRES_URL))
	$(BIN)/python bench/problems_bench.py $(if $(ROSTER_TEST_POSTGRES_URL),--postgres $(ROSTER_TEST_POSTGRES_URL))
	$(BIN)/python bench/export_bench.py $(if $(ROSTER_TEST_POSTGRES_URL),--postgres $(ROSTER_TEST_POSTGRES_URL))
	$(BIN)/python bench/scim_bench.py $(if $(ROSTER_TEST_POSTGRES_URL),--postgres $(ROSTER_TEST_POSTGRES_URL))
	$(BIN)/python bench/sftp_bench.py $(if $(ROSTER_TEST_POSTGRES_URL),--postgres $(ROSTER_TEST_POSTGRES_URL))
	$(BIN)/python bench/console_bench.py $(if $(ROSTER_TEST_POSTGRES_URL),--postgres $(ROSTER_TEST_POSTGRES_URL))
	$(BIN)/python bench/session_bench.py $(if $(ROSTER_TEST_POSTGRES_URL),--postgres $(ROSTER_TEST_POSTGRES_URL))
	$(BIN)/python bench/loop_bench.py $(if $(ROSTER_TEST_POSTGRES_URL),--postgres $(ROSTER_TEST_POSTGRES_URL))
	$(BIN)/python bench/sign_in_code_bench.py $(if $(ROSTER_TEST_POSTGRES_URL),--postgres $(ROSTER_TEST_POSTGRES_URL))
	$(BIN)/python bench/scim_log_bench.py $(if $(ROSTER_TEST_POSTGRES_URL),--postgres $(ROSTER_TEST_POSTGRES_URL))
	! command -v valgrind >/dev/null || $(BIN)/python bench/scim_log_bench.py --instructions --requests 1000 $(if $(ROSTER_TEST_POSTGRES_URL),--postgres $(ROSTER_TEST_POSTGRES_URL))
	$(BIN)/python bench/cli_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
