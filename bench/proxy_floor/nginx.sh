#!/usr/bin/env bash
# nginx as the thinnest possible gateway (keep-alive proxy, no logging), for the latency
# floor of *any* proxy hop on this machine: `nginx.sh PORT UPSTREAM_URL WORKERS`.
# Used by floor.sh through shared/bench/compare.sh --target-cmd; stays in the foreground.
set -euo pipefail
port=$1 upstream=${2#http://} workers=${3:-1}
upstream=${upstream%%/*}
dir=$(mktemp -d /tmp/nginx-floor.XXXXXX)
cat > "$dir/nginx.conf" <<CONF
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  upstream fake { server $upstream; keepalive 256; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://fake;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
exec nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;'
