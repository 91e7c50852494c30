#!/usr/bin/env bash
# Scale run: one gateway worker holding SCALE_REQUESTS (10,000) concurrent invocations
# of a function that takes SCALE_SLEEP (1) second. Reports the wall time of the burst,
# errors, and the gateway worker's memory growth per request in flight.
#
#   ci/bench-scale.sh
#   SCALE_REQUESTS=2000 ci/bench-scale.sh          # a smaller burst
#
# Targets (issue "Benchmark suite and the speed budget"): every request answered 200,
# within 2 s, and under 20 KB of gateway memory per request in flight.
#
# Shape: the client (h2load) holds the requests as HTTP/2 streams over a few connections,
# so that the gateway's file descriptors go to its connections to the function (one per
# request in flight: the plugin speaks HTTP/1.1 to the function). 10,000 HTTP/1.1 client
# connections plus 10,000 to the function would not fit one worker under a hard
# RLIMIT_NOFILE of 20,000 (this machine's, which an unprivileged container cannot raise).
# The function is an nginx whose Lua handler sleeps (ngx.sleep: no blocking) then answers.
#
# Environment (defaults):
#   SCALE_REQUESTS=10000  SCALE_SLEEP=1  SCALE_CLIENTS=10 (HTTP/2 connections of h2load)
#   SCALE_GATEWAY_PORT=21580  SCALE_FUNCTION_PORT=21590   (loopback)
#   SCALE_TARGET=plugin   or "nap": the gateway itself sleeps and answers, without the
#                   plugin: nginx's and Lua's own share of the memory and CPU
#   SCALE_SECOND=1  then a second, warm burst (the worker's memory has already grown,
#                   as in a gateway that has seen such a peak before); 0: only one
#   SCALE_PROTO=http  how the plugin reaches the function: http; https (HTTP/1.1 over TLS,
#                   a connection per request in flight); h2 (route field http2: HTTP/2
#                   over TLS, 128 calls in flight per connection)
#   SCALE_BUILD=1   run ci/build.sh first (0: use build/lib as it is)
#   SCALE_KEEP=0    1: keep the work directory (configs, logs, samples)
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
root=$(pwd)

N=${SCALE_REQUESTS:-10000}
SLEEP=${SCALE_SLEEP:-1}
CLIENTS=${SCALE_CLIENTS:-10}
GW_PORT=${SCALE_GATEWAY_PORT:-21580}
FN_PORT=${SCALE_FUNCTION_PORT:-21590}
BUILD=${SCALE_BUILD:-1}
KEEP=${SCALE_KEEP:-0}
TARGET=${SCALE_TARGET:-plugin}
SECOND=${SCALE_SECOND:-1}
PROTO=${SCALE_PROTO:-http}
NGINX=/usr/sbin/nginx
FN_BODY='{"message":"hello after a nap"}'

die() { echo "bench-scale: $*" >&2; exit 1; }
note() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

for v in N CLIENTS GW_PORT FN_PORT; do
    [[ ${!v} =~ ^[0-9]+$ ]] && ((${!v} > 0)) || die "$v must be a positive integer (got '${!v}')"
done
case $TARGET in plugin) GW_PATH=/scale/x ;; nap) GW_PATH=/nap/x ;; *) die "SCALE_TARGET: plugin or nap" ;; esac
case $PROTO in
    http) FN_LISTEN="" FN_SCHEME=http HTTP2=false ;;
    https) FN_LISTEN=" ssl" FN_SCHEME=https HTTP2=false ;;
    h2) FN_LISTEN=" ssl http2" FN_SCHEME=https HTTP2=true ;;
    *) die "SCALE_PROTO: http, https or h2" ;;
esac
[[ $SLEEP =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SCALE_SLEEP must be a number of seconds"
((N % CLIENTS == 0)) || die "SCALE_REQUESTS must be a multiple of SCALE_CLIENTS"
STREAMS=$((N / CLIENTS))

# --- preconditions ----------------------------------------------------------------------
if ! command -v h2load >/dev/null; then
    note "installing h2load (Debian's nghttp2-client)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if ! apt-cache policy nghttp2-client 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        $sudo apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        nghttp2-client >/dev/null
fi
for tool in h2load curl pgrep awk; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done
[ -x "$NGINX" ] || die "$NGINX is missing (ci/install-deps.sh --test installs it)"
for m in $NGINX_LUA_MODULES; do
    [ -f "$m" ] || die "$m is missing (ci/install-deps.sh --test installs it)"
done
"$NGINX" -V 2>&1 | grep -q -- --with-http_v2_module || die "$NGINX has no http_v2_module"
for port in "$GW_PORT" "$FN_PORT"; do
    port_in_use "$port" && die "port $port is in use: set SCALE_GATEWAY_PORT / SCALE_FUNCTION_PORT"
done
[ "$GW_PORT" != "$FN_PORT" ] || die "the gateway and function ports must differ"
# The gateway worker needs a descriptor per connection to the function, plus a few.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
((N + 1000 <= nofile)) || die "hard RLIMIT_NOFILE is $nofile: too low for $N requests in flight"
ports=$(awk '{ print $2 - $1 + 1 }' /proc/sys/net/ipv4/ip_local_port_range)
((N < ports)) || die "only $ports local ports for $N connections to the function"

if [ "$BUILD" = 1 ]; then
    note "building the native library (ci/build.sh)"
    ci/build.sh >&2
fi
[ -f build/lib/aws_lambda_native.so ] || die "build/lib/aws_lambda_native.so is missing: run ci/build.sh"

# --- start the function and the gateway -------------------------------------------------
work=$(mktemp -d /tmp/aws-lambda-scale.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/fn/logs" "$work/fn/conf" "$work/gw/logs" "$work/gw/conf"

sampler_pid=""
cleanup() {
    local rc=$?
    if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null || true; fi
    # up to 10 s: a gateway that held 10,000 connections takes longer to stop
    stop_nginx "$work/gw" 100
    stop_nginx "$work/fn" 100
    if [ "$KEEP" = 1 ] || [ "$rc" -ne 0 ]; then
        echo "bench-scale: work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

conns=$((N + 2000))
cat >"$work/fn/conf/nginx.conf" <<EOF
$NGINX_LOAD_MODULES
$NGINX_WORKER_USER
worker_processes 1;
worker_rlimit_nofile $nofile;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections $conns; }
http {
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    http2_max_concurrent_streams 1024;
    server {
        listen 127.0.0.1:$FN_PORT$FN_LISTEN backlog=65535;
        ssl_certificate $root/t/cert/server.crt;
        ssl_certificate_key $root/t/cert/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            default_type application/json;
            content_by_lua_block {
                ngx.sleep($SLEEP)
                ngx.print('$FN_BODY')
            }
        }
    }
}
EOF

cat >"$work/gw/conf/nginx.conf" <<EOF
$NGINX_LOAD_MODULES
$NGINX_WORKER_USER
worker_processes 1;
worker_rlimit_nofile $nofile;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections $conns; }
# the function's certificate is signed by the test CA
env SSL_CERT_FILE=$root/t/cert/ca.crt;
http {
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    http2_max_concurrent_streams $STREAMS;
    lua_package_path "$root/lua/?.lua;;";
    lua_package_cpath "$root/build/lib/?.so;;";

    init_by_lua_block {
        -- the plugin's defaults (keepalive_pool 5), with a timeout well above the nap
        SCALE_CONF = {
            function_uri = "$FN_SCHEME://127.0.0.1:$FN_PORT/fn",
            authorization = { apikey = "k" },
            timeout = 30000,
            http2 = $HTTP2,
        }
    }

    server {
        listen 127.0.0.1:$GW_PORT http2 backlog=65535;
        location ~ ^/scale/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(SCALE_CONF, ngx.var[1])
            }
        }
        # The same wait without the plugin (SCALE_TARGET=nap): nginx's and Lua's share.
        location /nap/ {
            default_type application/json;
            content_by_lua_block {
                ngx.sleep($SLEEP)
                ngx.print('$FN_BODY')
            }
        }
    }
}
EOF

wait_port() {
    for _ in $(seq 50); do
        port_in_use "$1" && return 0
        sleep 0.1
    done
    return 1
}
only_worker() {  # $1 = prefix; prints the pid of the master's only child
    local master kids
    master=$(cat "$1/logs/nginx.pid")
    kids=$(pgrep -P "$master" || true)
    [ -n "$kids" ] && [ "$(wc -w <<<"$kids")" -eq 1 ] \
        || die "expected exactly one worker under master $master, found: '${kids//$'\n'/ }'"
    echo "$kids"
}
status_kb() {  # $1 = pid, $2 = field of /proc/<pid>/status (VmRSS, VmHWM), in kB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

note "starting the function on 127.0.0.1:$FN_PORT and the gateway on 127.0.0.1:$GW_PORT"
"$NGINX" -p "$work/fn" -c conf/nginx.conf
wait_port "$FN_PORT" || die "the function nginx did not start (see $work/fn/logs/error.log)"
"$NGINX" -p "$work/gw" -c conf/nginx.conf
wait_port "$GW_PORT" || die "the gateway nginx did not start (see $work/gw/logs/error.log)"
gw_worker=$(only_worker "$work/gw")
gw_limit=$(awk '/^Max open files/ { print $4 }' "/proc/$gw_worker/limits")
((gw_limit >= N + 1000)) || die "the gateway worker may open only $gw_limit files"

note "checking the route (two requests, the second on a pooled connection)"
for _ in 1 2; do
    got=$(curl -sS --http2-prior-knowledge -o "$work/body" -w '%{http_code}' --max-time 10 \
        "http://127.0.0.1:$GW_PORT$GW_PATH") || die "the gateway did not answer"
    [ "$got" = 200 ] && [ "$(cat "$work/body")" = "$FN_BODY" ] \
        || die "the gateway answered $got: $(cat "$work/body")"
done
sleep 1
rss0=$(status_kb "$gw_worker" VmRSS)
hwm0=$(status_kb "$gw_worker" VmHWM)
cpu0=$(awk '{ print $14 + $15 }' "/proc/$gw_worker/stat")

# Samples of the gateway worker while the burst runs: time, RSS (kB), open descriptors.
(
    while kill -0 "$gw_worker" 2>/dev/null; do
        printf '%s\t%s\t%s\n' "$(date +%s.%N)" "$(status_kb "$gw_worker" VmRSS)" \
            "$(find "/proc/$gw_worker/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
        sleep 0.1
    done
) >"$work/samples.tsv" &
sampler_pid=$!

note "burst ($TARGET): $N requests at once ($CLIENTS HTTP/2 connections x $STREAMS streams), function sleeps ${SLEEP} s"
t0=$(date +%s.%N)
h2load -n "$N" -c "$CLIENTS" -m "$STREAMS" -t "$(nproc)" -T 60 \
    "http://127.0.0.1:$GW_PORT$GW_PATH" >"$work/h2load.out" 2>&1 || true
t1=$(date +%s.%N)
sleep 0.3
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""

[ "$(only_worker "$work/gw")" = "$gw_worker" ] || die "the gateway worker changed (crashed?)"
hwm1=$(status_kb "$gw_worker" VmHWM)
rss1=$(status_kb "$gw_worker" VmRSS)
cpu1=$(awk '{ print $14 + $15 }' "/proc/$gw_worker/stat")
hz=$(getconf CLK_TCK)

failed_in() {  # $1 = h2load output: requests failed, errored or timed out
    awk '/^requests:/ { for (i = 1; i <= NF; i++) if ($i ~ /^(failed|errored|timeout)/) s += $(i - 1); print s + 0 }' "$1"
}
ok_in() {  # $1 = h2load output: 2xx answers
    awk '/^status codes:/ { print $3 + 0 }' "$1"
}
failed=$(failed_in "$work/h2load.out")
status2xx=$(ok_in "$work/h2load.out")
finished=$(awk '/^finished in/ { print $3 }' "$work/h2load.out" | tr -d ',')
peak_fds=$(awk -F'\t' '$3 > m { m = $3 } END { print m + 0 }' "$work/samples.tsv")
peak_rss=$(awk -F'\t' '$2 > m { m = $2 } END { print m + 0 }' "$work/samples.tsv")
[ "$hwm1" -gt "$peak_rss" ] && peak_rss=$hwm1
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')

if [ "$SECOND" = 1 ]; then
    sleep 2  # the first burst's connections close; 5 stay pooled (keepalive_pool)
    note "second burst ($TARGET), warm"
    cpu2=$(awk '{ print $14 + $15 }' "/proc/$gw_worker/stat")
    t2=$(date +%s.%N)
    h2load -n "$N" -c "$CLIENTS" -m "$STREAMS" -t "$(nproc)" -T 60 \
        "http://127.0.0.1:$GW_PORT$GW_PATH" >"$work/h2load2.out" 2>&1 || true
    t3=$(date +%s.%N)
    cpu3=$(awk '{ print $14 + $15 }' "/proc/$gw_worker/stat")
    [ "$(only_worker "$work/gw")" = "$gw_worker" ] || die "the gateway worker changed (crashed?)"
    wall2=$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.2f", b - a }')
    failed2=$(failed_in "$work/h2load2.out")
    status2xx2=$(ok_in "$work/h2load2.out")
    rss2=$(status_kb "$gw_worker" VmRSS)
fi
errors_logged=$(grep -c '\[error\]\|\[alert\]\|\[crit\]' "$work/gw/logs/error.log" || true)

echo
cat "$work/h2load.out" | sed -n '/^finished in/,$p' | sed 's/^/  h2load: /' | head -12 >&2
echo
printf '| what | value |\n|---|---:|\n'
printf '| target | %s |\n' "$TARGET"
printf '| to the function | %s |\n' "$PROTO"
printf '| requests in the burst | %d (%d HTTP/2 connections x %d streams) |\n' "$N" "$CLIENTS" "$STREAMS"
printf '| function time | %s s |\n' "$SLEEP"
printf '| wall time, first burst (h2load start to last answer) | %s s (h2load: %s) |\n' "$wall" "$finished"
printf '| first burst: answered 200 | %s |\n' "${status2xx:-0}"
printf '| first burst: failed, errored or timed out (h2load) | %s |\n' "$failed"
if [ "$SECOND" = 1 ]; then
    printf '| second burst (warm): wall time, answered 200, failed | %s s, %s, %s |\n' \
        "$wall2" "${status2xx2:-0}" "$failed2"
    printf '| second burst: gateway worker CPU, RSS after | %s s (%s µs per request), %d MB |\n' \
        "$(awk -v t="$((cpu3 - cpu2))" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')" \
        "$(awk -v t="$((cpu3 - cpu2))" -v hz="$hz" -v n="$N" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }')" \
        $((rss2 / 1024))
fi
printf '| errors in the gateway log (both bursts) | %s |\n' "$errors_logged"
printf '| gateway worker RSS before / peak / after the first burst | %d / %d / %d MB |\n' \
    $((rss0 / 1024)) $((peak_rss / 1024)) $((rss1 / 1024))
printf '| RSS growth per request in flight | %s KB |\n' \
    "$(awk -v a="$rss0" -v b="$peak_rss" -v n="$N" 'BEGIN { printf "%.1f", (b - a) / n }')"
printf '| gateway worker open files, peak | %d (limit %d) |\n' "$peak_fds" "$gw_limit"
printf '| first burst: gateway worker CPU | %s s (%s µs per request) |\n' \
    "$(awk -v t="$((cpu1 - cpu0))" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')" \
    "$(awk -v t="$((cpu1 - cpu0))" -v hz="$hz" -v n="$N" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }')"
if [ "$hwm0" -gt "$rss0" ]; then
    echo "(the worker's RSS had peaked at $((hwm0 / 1024)) MB before the burst)" >&2
fi
if [ "$errors_logged" -gt 0 ]; then
    echo "bench-scale: first errors in the gateway log:" >&2
    grep '\[error\]\|\[alert\]\|\[crit\]' "$work/gw/logs/error.log" | head -5 >&2
fi
ok=1
[ "${status2xx:-0}" = "$N" ] && [ "$failed" = 0 ] && [ "$errors_logged" = 0 ] || ok=0
if [ "$SECOND" = 1 ]; then
    [ "${status2xx2:-0}" = "$N" ] && [ "$failed2" = 0 ] || ok=0
fi
[ "$ok" = 1 ] || { echo "bench-scale: not every request succeeded" >&2; exit 1; }
