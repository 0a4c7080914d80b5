#!/bin/bash
# The gateway's in-process call timeline at c=1: ./run_timeline.sh KEY [SECONDS] [LATENCY_MS]
# (KEY: a bench key, see bench/compare_nexeon.sh). Output: /tmp/timeline.out
set -u
KEY=$1; S=${2:-8}; LAT=${3:-50}
HERE=$(cd "$(dirname "$0")" && pwd); PROJECT=$(cd "$HERE/../.." && pwd); BENCH=${BENCH_DIR:-$(cd "$PROJECT/.." && pwd)/shared/bench}
export DATABASE_URL=${NEXEON_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/nexeon_bench} REDIS_URL=${NEXEON_BENCH_REDIS_URL:-redis://127.0.0.1:6379/2}
export SECRET_KEY=bench-only-secret LOG_LEVEL=WARNING OPENAI_BASE_URL=http://127.0.0.1:18000/v1 OPENAI_API_KEY=sk-bench PORT=8101
BODY=/tmp/timeline-chat.json
echo '{"model": "gpt-4o", "messages": [{"role": "user", "content": "In three sentences, explain what an API gateway for LLM providers does."}], "max_tokens": 256}' > $BODY
(exec taskset -c 0 /tmp/bench-venv/bin/python "$BENCH/fake_upstream.py" --port 18000 --latency-ms $LAT >/dev/null 2>&1) & UP=$!
(cd "$PROJECT" && exec taskset -c 1 .venv/bin/python "$HERE/timeline_gateway.py" >/tmp/timeline.out 2>/tmp/timeline.err) & GW=$!
for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8101/v1/openapi.json && break; sleep 0.1; done
taskset -c 0 wrk -t1 -c16 -d3s -s "$BENCH/post.lua" http://127.0.0.1:8101/v1/chat/completions -- $BODY $KEY >/dev/null
taskset -c 0 wrk -t1 -c1 -d${S}s -s "$BENCH/post.lua" http://127.0.0.1:8101/v1/chat/completions -- $BODY $KEY | grep -o '"requests":[0-9]*'
kill -USR2 $GW; sleep 0.5; kill $GW $UP; wait 2>/dev/null
sort -n /tmp/timeline.out
