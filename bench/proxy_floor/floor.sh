#!/usr/bin/env bash
# The added latency of one proxy hop on this machine, whatever the proxy: nginx (C, no
# auth, no accounting) beside direct calls, through shared/bench/compare.sh with the same
# pinning and load generator as the gateway comparison. 50 ms upstream, chat, 1 worker.
#   bench/proxy_floor/floor.sh [--out DIR] [more compare.sh options]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shared=$(cd "$here/../../../shared/bench" && pwd)
port=${PORT:-18090}
exec "$shared/compare.sh" --no-litellm --workers 1 --latencies 50 --scenarios chat \
  --target "http://127.0.0.1:$port" --key sk-any --target-name nginx \
  --target-cmd "$here/nginx.sh {port} {upstream} {workers}" "$@"
