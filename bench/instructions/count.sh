#!/usr/bin/env bash
# Instructions per call of one gateway checkout, counted by callgrind: deterministic where
# the wall clock of a shared machine is not. Serves CHECKOUT under valgrind (instrumentation
# off), sends 300 calls of warm-up, then counts N calls at concurrency C against a 0 ms
# fake upstream, and prints instructions per call.
#
#   bench/instructions/count.sh CHECKOUT KEY [N=1000] [C=64]
#
# KEY: a key with credit in the database the environment names (DATABASE_URL, REDIS_URL,
# SECRET_KEY, as for `make run`); OPENAI_BASE_URL is pointed at the fake (bench/compare's).
# Needs valgrind.
set -euo pipefail
CHECKOUT=$(cd "$1" && pwd); KEY=$2; N=${3:-1000}; C=${4:-64}
HERE=$(cd "$(dirname "$0")" && pwd); PROJECT=$(dirname "$(dirname "$HERE")")
PORT=${PORT:-8291}; UPSTREAM_PORT=${UPSTREAM_PORT:-18191}
OUT=$(mktemp -d); BODY=$OUT/body.json
echo '{"model": "gpt-4o", "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "In three sentences, explain what an API gateway for LLM providers does and why teams use one."}], "temperature": 0.7, "max_tokens": 256}' > "$BODY"
export OPENAI_BASE_URL=http://127.0.0.1:$UPSTREAM_PORT/v1 OPENAI_API_KEY=sk-bench LOG_LEVEL=WARNING
"$PROJECT/.venv/bin/python" "$PROJECT/bench/compare/fake_upstream.py" --port "$UPSTREAM_PORT" --latency-ms 0 >/dev/null 2>&1 &
UPSTREAM=$!
cd "$CHECKOUT"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.out" \
  "$PROJECT/.venv/bin/python" "$PROJECT/.venv/bin/uvicorn" nexeon.asgi:application --host 127.0.0.1 \
  --port "$PORT" --loop uvloop --http apigateway.server:GatewayHttpProtocol --no-access-log \
  --lifespan on >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER $UPSTREAM 2>/dev/null || true' EXIT
for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.5; done
python3 "$HERE/client.py" 300 "$C" "$PORT" "$KEY" "$BODY" >/dev/null
callgrind_control -i on "$SERVER" >/dev/null
python3 "$HERE/client.py" "$N" "$C" "$PORT" "$KEY" "$BODY"
callgrind_control -i off "$SERVER" >/dev/null
callgrind_control -d "$SERVER" >/dev/null
TOTAL=$(grep -h '^totals:' "$OUT"/callgrind.out.* | awk '{s += $2} END {print s}')
echo "$CHECKOUT: $((TOTAL / N)) instructions per call (N=$N, C=$C)"
