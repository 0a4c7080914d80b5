# Two commands matter: `make run` and `make test`. The rest are their helpers, CI's other
# checks (lint, types) and shortcuts (format, lock, migrate, credits, worker, beat, bench).
# PYTHON and VENV choose the interpreter and its venv: `make test PYTHON=python3.13
# VENV=.venv-3.13` is CI's second run (scripts/ensure-python finds or builds the interpreter).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

# `make test` talks to the real services; the environment may point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/nexeon
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1

.PHONY: run run-host-check bench test lint types format check lock migrate credits worker beat clean chromium pgbouncer strace

$(BIN)/uv:
	python=$$(scripts/ensure-python $(PYTHON)) && "$$python" -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Stamp files make re-runs instant until a lock file changes.
$(VENV)/.runtime: requirements.lock | $(BIN)/uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	touch $@

$(VENV)/.dev: requirements-dev.lock | $(BIN)/uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-dev.lock
	touch $@ $(VENV)/.runtime

# DEBUG pages on a HOST other than loopback only when asked (scripts/refuse-debug-on-network);
# checked before anything is installed or migrated.
run-host-check:
	@HOST='$(HOST)' scripts/refuse-debug-on-network

run: run-host-check $(VENV)/.runtime
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo "NeXeonAI: dashboard http://$(HOST):$(PORT)/  API http://$(HOST):$(PORT)/v1"
	DEBUG=$${DEBUG-1} exec $(BIN)/uvicorn nexeon.asgi:application --host $(HOST) --port $(PORT) \
		--workers $(WORKERS) --loop uvloop --http apigateway.server:GatewayHttpProtocol --no-access-log --lifespan on \
		--timeout-graceful-shutdown $${GATEWAY_GRACE_SECONDS:-30}

# The official Node SDK, for the tests that check it parses the gateway's answers too.
NODE_SDK := tests/node/node_modules/.package-lock.json
$(NODE_SDK): tests/node/package-lock.json
	npm ci --prefix tests/node --no-audit --no-fund --silent

# Browser tests drive Debian's Chromium through Playwright (no browser download).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The transaction-pooling test runs a real PgBouncer (Debian's), started by the test itself.
pgbouncer:
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; }

# strace counts the system calls a test says the code does not make.
strace:
	@command -v strace >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null; }

test: $(VENV)/.dev $(NODE_SDK) chromium pgbouncer strace
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" REDIS_URL="$${REDIS_URL:-$(TEST_REDIS_URL)}" \
		SECRET_KEY="$${SECRET_KEY:-test-only-secret-key-never-used-in-production}" \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy over the whole project, bench/ included; strict where pyproject.toml's overrides say so.
# The Django plugin imports the settings, which need a key (or DEBUG) and nothing else.
types: $(VENV)/.dev
	DEBUG=$${DEBUG-1} SECRET_KEY="$${SECRET_KEY:-types-only}" $(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-pin after editing pyproject.toml's dependencies. One lock serves every Python that
# requires-python allows (3.11 to 3.13): --universal writes a marker where they differ.
LOCK := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -q
lock: | $(BIN)/uv
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev -o requirements-dev.lock

migrate: $(VENV)/.runtime
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py migrate --noinput

# Credits without Stripe for the organization of a user who signed up, with `make run`'s
# DEBUG default: `make credits EMAIL=you@example.com USD=10` (a ledger grant), to their own
# organization or to ORG=<slug>, another of theirs.
credits: $(VENV)/.runtime
	@test -n "$(EMAIL)" && test -n "$(USD)" || \
		{ echo "usage: make credits EMAIL=you@example.com USD=10 [ORG=slug]" >&2; exit 2; }
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py grant_credits "$(EMAIL)" --usd "$(USD)" \
		$(if $(ORG),--organization "$(ORG)")

# The worker and the scheduler, with `make run`'s DEBUG default (so its development key);
# both need REDIS_URL (or CELERY_BROKER_URL) and refuse to start without one.
worker: $(VENV)/.runtime
	DEBUG=$${DEBUG-1} exec $(BIN)/celery -A nexeon worker --loglevel INFO

beat: $(VENV)/.runtime
	DEBUG=$${DEBUG-1} exec $(BIN)/celery -A nexeon beat --loglevel INFO \
		--schedule $${DATA_DIR:-.}/celerybeat-schedule

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache .cache tests/node/node_modules celerybeat-schedule*

# This gateway beside direct calls and LiteLLM on this machine, one table (docs/performance.md).
# Installs LiteLLM into .bench/ on first use; BENCH_ARGS go to bench/compare/compare.py.
bench: $(VENV)/.runtime
	bench/compare_nexeon.sh $(BENCH_ARGS)
