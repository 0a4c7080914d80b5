#!/usr/bin/env bash
# This gateway beside direct calls and LiteLLM's proxy, with shared/bench/compare.sh.
# Production-like: PostgreSQL, Redis (auth cache, limiter, balance), usage booked via Celery
# (messages queue in Redis; no worker needed for the measurement). Extra args go to
# compare.sh, e.g. --quick, --workers 1 --repeat 2.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH_DIR:-$(cd .. && pwd)/shared/bench}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/nexeon_bench}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/2}
export SECRET_KEY=${SECRET_KEY:-bench-only-secret}
export LOG_LEVEL=${LOG_LEVEL:-WARNING}
make -s .venv/.runtime
psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='nexeon_bench'" \
  | grep -q 1 || createdb -h 127.0.0.1 -U postgres nexeon_bench
.venv/bin/python manage.py migrate -v0
redis-cli -n 2 flushdb >/dev/null
KEY=$(.venv/bin/python manage.py create_api_key bench@example.com --credits 1000000 \
      --rpm 10000000 --name bench | tail -1)
SERVER=".venv/bin/uvicorn nexeon.asgi:application --host 127.0.0.1 --port {port}"
SERVER+=" --workers {workers} --loop uvloop --http httptools --no-access-log --lifespan off"
exec "$BENCH/compare.sh" --target http://127.0.0.1:8000 --key "$KEY" --target-name nexeon \
  --ready-path /v1/models \
  --target-cmd "cd $PWD && OPENAI_BASE_URL={upstream} OPENAI_API_KEY=sk-bench $SERVER" "$@"
