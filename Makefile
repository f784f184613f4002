# DLS Admin. `make run` serves the product with demo data; `make test` runs the whole suite.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Links in emails, the demo logins and the local license's `iss` (settings.BASE_URL) follow the
# port `make run` serves on, unless BASE_URL is set.
BASE_URL ?= http://$(HOST):$(PORT)


.PHONY: demo-traffic run test test-pg test-sqlite install lint format migrations bench serve worker beat clean

$(BIN)/activate: requirements.txt requirements-dev.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $(BIN)/activate

install: $(BIN)/activate

# Migrate, load demo data, then the web server, a Celery worker and beat until Ctrl-C or SIGTERM,
# which stops all three once each (background jobs of a script ignore the terminal's SIGINT, so
# each gets exactly one SIGTERM from the trap: a warm shutdown, then the trap is cleared).
run: install
	BASE_URL=$(BASE_URL) $(PYTHON) manage.py migrate --noinput
	BASE_URL=$(BASE_URL) $(PYTHON) manage.py seed_demo
	@export BASE_URL=$(BASE_URL); \
	stop() { trap - INT TERM EXIT; kill -TERM $$web $$worker $$beat 2>/dev/null; wait $$web $$worker $$beat 2>/dev/null; }; \
	trap stop INT TERM EXIT; \
	$(BIN)/celery -A dls_admin worker --loglevel=INFO --concurrency=2 & worker=$$!; \
	$(BIN)/celery -A dls_admin beat --loglevel=INFO & beat=$$!; \
	$(PYTHON) manage.py runserver --noreload $(HOST):$(PORT) & web=$$!; \
	wait $$web

# The whole suite. DATABASE_URL picks the database (SQLite when unset).
test: install
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-pg: install
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/dls} $(BIN)/pytest -q $(PYTEST_ARGS)

test-sqlite: install
	env -u DATABASE_URL $(BIN)/pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PYTHON) .ci/check_imports.py
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate migrations from the models (before the first release: one 0001 per app).
migrations: install
	$(PYTHON) manage.py makemigrations licenses devices usage

# Benchmarks on PostgreSQL (docs/benchmarks.md): jobs vs bare SQL, then the API under load and the portal
# at 100,000 devices (the fleet-scale table; bench_api makes and drops <database>_bench), then the replay.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dls_bench
bench: install
	createdb -h 127.0.0.1 -U postgres $(notdir $(BENCH_DATABASE_URL)) 2>/dev/null || true
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PYTHON) manage.py migrate --noinput
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PYTHON) manage.py bench_jobs $(BENCH_JOBS_ARGS)
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PYTHON) manage.py bench_api --write-doc $(BENCH_ARGS)
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PYTHON) manage.py bench_replay $(BENCH_REPLAY_ARGS)

# Simulated SDK devices against a running `make run` (second terminal).
demo-traffic: install
	@trap 'kill 0' EXIT INT TERM; \
	for p in acme-web acme-warehouse acme-documents globex-labels globex-backend; do \
	  $(PYTHON) manage.py simulate_fleet --base-url http://$(HOST):$(PORT) --project $$p --devices 8 \
	    --slots 480 --speed 30 --offline-fraction 0.2 --error-rate 0.02 --wait 120 --progress-every 60 & \
	done; wait

clean:
	rm -rf var staticfiles
