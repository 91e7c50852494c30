#!/usr/bin/env bash
# Reload under load: `nginx -s reload` five times while wrk sends IAM-signed requests
# through the plugin. Passes when no request fails (no non-2xx answer, no error-log
# line) and, afterwards, only the current workers' completion sockets exist and each
# worker runs its nginx thread and one runtime thread. The function is a server block of
# the same nginx, so its keepalive connections close on every reload too (the pool's
# retry of idempotent requests on a new connection is exercised).
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
root=$(pwd)

GATEWAY_PORT=${RELOAD_GATEWAY_PORT:-21380}
FUNCTION_PORT=${RELOAD_FUNCTION_PORT:-21381}
NGINX=${TEST_NGINX_BINARY:-/usr/sbin/nginx}
SOCKET_DIR=$(mktemp -d /tmp/aws-lambda-reload-sockets.XXXXXX)
chmod 1777 "$SOCKET_DIR"   # like /tmp: workers run as an unprivileged user
work=$(mktemp -d /tmp/aws-lambda-reload.XXXXXX)
mkdir -p "$work/logs" "$work/conf"

fail() { echo "reload test: FAIL: $*" >&2; exit 1; }
command -v wrk >/dev/null || fail "wrk is missing (ci/install-deps.sh --test installs it)"
for port in "$GATEWAY_PORT" "$FUNCTION_PORT"; do
    if port_in_use "$port"; then
        fail "port $port is in use (set RELOAD_GATEWAY_PORT / RELOAD_FUNCTION_PORT)"
    fi
done
trap '"$NGINX" -p "$work" -c conf/nginx.conf -s stop 2>/dev/null || true; sleep 0.5;
      rm -rf "$SOCKET_DIR"' EXIT

cat >"$work/conf/nginx.conf" <<EOF
$NGINX_LOAD_MODULES
$NGINX_WORKER_USER
worker_processes 2;
error_log logs/error.log info;
pid logs/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    lua_package_path "$root/lua/?.lua;;";
    lua_package_cpath "$root/build/lib/?.so;;";
    init_by_lua_block {
        require("apisix.plugins.aws-lambda.native").socket_dir = "$SOCKET_DIR"
        CONF = {
            function_uri = "http://127.0.0.1:$FUNCTION_PORT/fn",
            keepalive_pool = 64,
            authorization = { iam = { accesskey = "AKIDEXAMPLE",
                                      secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" } },
        }
    }
    server { listen 127.0.0.1:$FUNCTION_PORT; location /fn { return 200 "ok\n"; } }
    server {
        listen 127.0.0.1:$GATEWAY_PORT;
        location /aws {
            access_by_lua_block { require("apisix.plugins.aws-lambda.openresty").run(CONF) }
        }
    }
}
EOF

"$NGINX" -p "$work" -c conf/nginx.conf
sleep 0.5
wrk -t2 -c64 -d12s "http://127.0.0.1:$GATEWAY_PORT/aws" >"$work/wrk.txt" 2>&1 &
wrk_pid=$!
for _ in 1 2 3 4 5; do
    sleep 2
    "$NGINX" -p "$work" -c conf/nginx.conf -s reload
done
wait "$wrk_pid"
sleep 3   # old workers finish their last requests and exit

requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
[ -n "$requests" ] || fail "wrk did not run: $(cat "$work/wrk.txt")"
[ -z "$non2xx" ] || fail "$non2xx of $requests requests failed during the reloads"
if grep -E "\[(error|alert|crit|emerg)\]" "$work/logs/error.log" | grep -v "signal process"; then
    fail "error-log lines during the reloads (above)"
fi

workers=$(pgrep -P "$(cat "$work/logs/nginx.pid")" | sort)
[ "$(echo "$workers" | wc -l)" -eq 2 ] || fail "expected 2 workers, found: $workers"
sockets=$(ls "$SOCKET_DIR")
for pid in $workers; do
    threads=$(ls "/proc/$pid/task" | wc -l)
    # the nginx thread and the runtime thread (DNS lookups may add a short-lived one)
    [ "$threads" -le 3 ] || fail "worker $pid runs $threads threads"
done
leftover=$(echo "$sockets" | grep -v -x -F "$(for pid in $workers; do
    echo "aws-lambda-native-$pid.sock"; done)" || true)
[ -z "$leftover" ] || fail "sockets of old workers left behind: $leftover"

echo "reload under load: $requests requests, 5 reloads, none failed;" \
     "no sockets or threads left by old workers"
