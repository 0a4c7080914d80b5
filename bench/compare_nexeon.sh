#!/usr/bin/env bash
# `make bench`: this gateway beside direct calls and LiteLLM's proxy, all on 127.0.0.1, one
# table on stdout (docs/performance.md says how to read it). Installs what is missing: wrk
# (apt) and LiteLLM from PyPI into .bench/litellm (ignored by git). Makes the bench database
# and a key, then bench/compare/compare.py starts the fake upstream, LiteLLM and the gateway
# (production-like: PostgreSQL, Redis, auth, limiter, credit, usage events), pinned, in turn.
# Extra arguments go to compare.py and win over the defaults below, e.g. --duration 8,
# --latencies 0,50, --conc 1,16,64, --no-litellm, --repeat 2; `compare.py --help` lists all.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${NEXEON_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/nexeon_bench}
RD=${NEXEON_BENCH_REDIS_URL:-redis://127.0.0.1:6379/2}
PORT=${NEXEON_BENCH_PORT:-18080}
LITELLM_VENV=${LITELLM_VENV:-.bench/litellm}
LITELLM_SPEC=${LITELLM_SPEC:-litellm[proxy]==1.108.7}
ENVS="DATABASE_URL=$DB REDIS_URL=$RD SECRET_KEY=bench-only-secret LOG_LEVEL=WARNING"

if ! command -v wrk >/dev/null; then
  echo "[bench] installing wrk (apt)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi
case " $* " in *" --no-litellm "*) ;; *)
  if [ ! -x "$LITELLM_VENV/bin/litellm" ]; then
    echo "[bench] installing $LITELLM_SPEC into $LITELLM_VENV (a few minutes, ~600 MB)"
    .venv/bin/uv venv -q "$LITELLM_VENV" --python "$(command -v python3)"
    .venv/bin/uv pip install -q --python "$LITELLM_VENV/bin/python" "$LITELLM_SPEC"
  fi ;;
esac

# The bench database: created once, migrated, Redis db emptied, a fresh key with ample credit
# and a rate limit above the load (or cells fill with 402/429).
name=${DB##*/}
psql "${DB%/*}/postgres" -tAc "select 1 from pg_database where datname='$name'" | grep -q 1 \
  || psql "${DB%/*}/postgres" -qc "create database \"$name\""
env $ENVS .venv/bin/python manage.py migrate -v0
redis-cli -u "$RD" flushdb >/dev/null
KEY=$(env $ENVS .venv/bin/python manage.py create_api_key bench@example.com \
      --credits 1000000 --rpm 10000000 --plan unlimited --name bench | tail -1)

SERVER=".venv/bin/uvicorn nexeon.asgi:application --host 127.0.0.1 --port {port}"
SERVER+=" --workers {workers} --loop uvloop --http apigateway.server:GatewayHttpProtocol"
SERVER+=" --no-access-log --lifespan on"
# LiteLLM reads DATABASE_URL: the gateway's settings go only to its own command line, so
# LiteLLM runs in its documented database-less mode. The whole run is bounded.
exec env -u DATABASE_URL -u REDIS_URL timeout --signal=TERM --kill-after=30 \
  "${BENCH_TIMEOUT:-1200}" .venv/bin/python bench/compare/compare.py \
  --workers 1 --latencies 0,50 --conc 1,16 --scenarios chat,stream --duration 5 \
  --quiet-wait 5 --litellm-venv "$LITELLM_VENV" --out ".bench/runs/$(date -u +%Y%m%d-%H%M%S)" \
  --target "http://127.0.0.1:$PORT" --key "$KEY" --target-name nexeon --ready-path /v1/models \
  --target-cmd "cd $PWD && env $ENVS OPENAI_BASE_URL={upstream} OPENAI_API_KEY=sk-bench $SERVER" \
  "$@"
