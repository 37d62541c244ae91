# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
FLASK  := $(BIN)/flask --app webapp
# pytest-xdist workers for `make test` (each gets its own test database and Redis database)
TEST_WORKERS ?= auto

.PHONY: run test bench lint format clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

## Serve the app on http://127.0.0.1:$(PORT) (SQLite in instance/ unless DATABASE_URL is set)
## with gunicorn: WEB_WORKERS gthread processes (1 on SQLite) of WEB_THREADS threads (8)
run: $(VENV)/.runtime
	$(BIN)/python -m webapp.instance
	$(FLASK) db upgrade
	$(BIN)/gunicorn -c python:webapp.gunicorn_conf --bind 127.0.0.1:$(PORT) wsgi:app

## Check the architecture's import contracts, then run the whole test suite
## (PostgreSQL/Redis/Chromium tests need TEST_DATABASE_URL, REDIS_URL, chromium)
test: $(VENV)/.dev
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## Build benchmark data on PostgreSQL and print one line per figure (BENCH_DATABASE_URL overrides)
bench: $(VENV)/.dev
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check webapp tests bench migrations wsgi.py

format: $(VENV)/.dev
	$(BIN)/ruff format webapp tests bench wsgi.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
