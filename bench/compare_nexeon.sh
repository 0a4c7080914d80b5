#!/usr/bin/env bash
# This gateway beside direct calls and LiteLLM's proxy, with shared/bench/compare.sh.
# Production-like: PostgreSQL, Redis (auth cache, limiter, balance, usage queue). The
# gateway's settings go only to its own command line, so LiteLLM (which reads
# DATABASE_URL) runs in its documented database-less mode. Extra args go to compare.sh,
# e.g. --quick, or --repeat 2.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH_DIR:-$(cd .. && pwd)/shared/bench}
DB=${NEXEON_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/nexeon_bench}
RD=${NEXEON_BENCH_REDIS_URL:-redis://127.0.0.1:6379/2}
ENVS="DATABASE_URL=$DB REDIS_URL=$RD SECRET_KEY=bench-only-secret LOG_LEVEL=WARNING"
make -s .venv/.runtime
psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='nexeon_bench'" \
  | grep -q 1 || createdb -h 127.0.0.1 -U postgres nexeon_bench
env $ENVS .venv/bin/python manage.py migrate -v0
redis-cli -u "$RD" flushdb >/dev/null
KEY=$(env $ENVS .venv/bin/python manage.py create_api_key bench@example.com \
      --credits 1000000 --rpm 10000000 --plan unlimited --name bench | tail -1)
SERVER=".venv/bin/uvicorn nexeon.asgi:application --host 127.0.0.1 --port {port}"
SERVER+=" --workers {workers} --loop uvloop --http apigateway.server:GatewayHttpProtocol --no-access-log --lifespan on"
exec env -u DATABASE_URL -u REDIS_URL "$BENCH/compare.sh" --target http://127.0.0.1:8000 \
  --key "$KEY" --target-name nexeon --ready-path /v1/models \
  --target-cmd "cd $PWD && env $ENVS OPENAI_BASE_URL={upstream} OPENAI_API_KEY=sk-bench $SERVER" "$@"
