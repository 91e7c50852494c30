#!/usr/bin/env bash
# Soak: a million requests through the plugin on one nginx worker, watching the worker
# for leaks, plus clients that give up on slow calls (abandoned tickets).
#
#   ci/soak.sh                                              # 1,000,000 requests, ~1.5 min
#   SOAK_REQUESTS=100000 SOAK_CHUNK_SECONDS=3 ci/soak.sh    # a quick look
#
# A gateway nginx (master + 1 worker) runs the plugin in front of a local "function"
# nginx, like ci/bench.sh. wrk sends the requests in chunks of SOAK_CHUNK_SECONDS over
# SOAK_CONNS connections (the last chunk sized from the route's rate so far), alternating
# an apikey route with the default pool of 5 idle connections (so connections are opened
# and closed all the time) and a SigV4 route with a pool of 64. After a warm-up on each
# route, and after every chunk, the script samples the worker's RSS (/proc/<pid>/status),
# open fds (/proc/<pid>/fd) and threads, and the plugin's own counts (a /stats location
# printing native.stats()).
#
# Abandoned tickets: after the warm-up, SOAK_ABORTS clients each request a function that
# takes SOAK_SLOW_MS and hang up after 0.3 s, half of them on a location with
# `lua_check_client_abort on` (nginx kills the waiting request: the outcome is never
# taken and must expire) and half without (the request waits, takes the outcome, and
# fails to write it). At the end every ticket must be gone within SOAK_RECLAIM_WAIT s.
#
# Fails (exit 1) when: a request fails (non-2xx, socket error), the worker changes
# (crash), the error log has lines at [error] or worse, RSS grew by more than
# SOAK_MAX_RSS_GROWTH_KB or fds by more than SOAK_MAX_FD_GROWTH, or tickets / waiting
# requests do not return to 0. Growth is measured from the highest value over the first
# two chunks (one per route: the routes share the endpoint's pool, which keeps up to 64
# idle connections after /iam and 5 after /apikey; and the hang-ups' 200 concurrent
# requests have raised the heap's high-water mark by then) to the last sample.
#
# Environment (defaults):
#   SOAK_REQUESTS=1000000 (at least that many, after the warm-up)
#   SOAK_CHUNK_SECONDS=5  SOAK_WARMUP_SECONDS=5 (per route)
#   SOAK_CONNS=32  SOAK_ABORTS=200  SOAK_SLOW_MS=2000  SOAK_RECLAIM_WAIT=90
#   SOAK_MAX_RSS_GROWTH_KB=4096  SOAK_MAX_FD_GROWTH=16
#   SOAK_GATEWAY_PORT=21580  SOAK_FUNCTION_PORT=21581   (loopback)
#   SOAK_BUILD=0   1: run ci/build.sh first (else build/lib must exist)
#   SOAK_KEEP=0    1: keep the work directory (configs, logs, samples)
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
root=$(pwd)

REQUESTS=${SOAK_REQUESTS:-1000000}
CHUNK_SECONDS=${SOAK_CHUNK_SECONDS:-5}
WARMUP_SECONDS=${SOAK_WARMUP_SECONDS:-5}
CONNS=${SOAK_CONNS:-32}
ABORTS=${SOAK_ABORTS:-200}
SLOW_MS=${SOAK_SLOW_MS:-2000}
RECLAIM_WAIT=${SOAK_RECLAIM_WAIT:-90}
MAX_RSS_GROWTH_KB=${SOAK_MAX_RSS_GROWTH_KB:-4096}
MAX_FD_GROWTH=${SOAK_MAX_FD_GROWTH:-16}
GW_PORT=${SOAK_GATEWAY_PORT:-21580}
FN_PORT=${SOAK_FUNCTION_PORT:-21581}
BUILD=${SOAK_BUILD:-0}
KEEP=${SOAK_KEEP:-0}
THREADS=2
NGINX=${TEST_NGINX_BINARY:-/usr/sbin/nginx}
FN_BODY='{"message":"soak"}'

die() { echo "soak: $*" >&2; exit 1; }
note() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

for v in REQUESTS CHUNK_SECONDS WARMUP_SECONDS CONNS ABORTS SLOW_MS RECLAIM_WAIT MAX_RSS_GROWTH_KB \
         MAX_FD_GROWTH GW_PORT FN_PORT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "SOAK_$v must be a non-negative integer (got '${!v}')"
done
((CONNS >= THREADS && CHUNK_SECONDS > 0 && WARMUP_SECONDS > 0)) \
    || die "need SOAK_CONNS >= $THREADS and positive SOAK_CHUNK_SECONDS, SOAK_WARMUP_SECONDS"

# --- preconditions ----------------------------------------------------------------------
for tool in wrk curl pgrep awk xargs; do
    command -v "$tool" >/dev/null || die "$tool is missing (ci/install-deps.sh --test installs it)"
done
[ -x "$NGINX" ] || die "$NGINX is missing (ci/install-deps.sh --test installs it)"
for m in $NGINX_LUA_MODULES; do
    [ -f "$m" ] || die "$m is missing (ci/install-deps.sh --test installs it)"
done
[ "$GW_PORT" != "$FN_PORT" ] || die "the gateway and function ports must differ"
for port in "$GW_PORT" "$FN_PORT"; do
    ! port_in_use "$port" \
        || die "port $port is in use: set SOAK_GATEWAY_PORT / SOAK_FUNCTION_PORT to free ports"
done
if [ "$BUILD" = 1 ]; then
    note "building the native library (ci/build.sh)"
    ci/build.sh >&2
fi
[ -f build/lib/aws_lambda_native.so ] || die "build/lib/aws_lambda_native.so is missing: run ci/build.sh"

# --- start the function and the gateway -------------------------------------------------
work=$(mktemp -d /tmp/aws-lambda-soak.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/fn/logs" "$work/fn/conf" "$work/gw/logs" "$work/gw/conf" "$work/sock"
chmod 1777 "$work/sock"   # the completion sockets; workers may run unprivileged
samples="$work/samples.tsv"

cleanup() {
    local rc=$?
    stop_nginx "$work/gw"
    stop_nginx "$work/fn"
    if [ "$KEEP" = 1 ] || [ "$rc" -ne 0 ]; then
        echo "soak: work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$work/fn/conf/nginx.conf" <<EOF
$NGINX_LOAD_MODULES
$NGINX_WORKER_USER
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    server {
        listen 127.0.0.1:$FN_PORT backlog=4096;
        location /fn {
            default_type application/json;
            return 200 '$FN_BODY';
        }
        location /slow {
            content_by_lua_block { ngx.sleep($SLOW_MS / 1000) ngx.say("late") }
        }
    }
}
EOF

cat >"$work/gw/conf/nginx.conf" <<EOF
$NGINX_LOAD_MODULES
$NGINX_WORKER_USER
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    lua_package_path "$root/lua/?.lua;;";
    lua_package_cpath "$root/build/lib/?.so;;";

    init_by_lua_block {
        require("apisix.plugins.aws-lambda.native").socket_dir = "$work/sock"
        SOAK_APIKEY = {
            function_uri = "http://127.0.0.1:$FN_PORT/fn",
            authorization = { apikey = "k" },
        }
        SOAK_IAM = {
            function_uri = "http://127.0.0.1:$FN_PORT/fn",
            keepalive_pool = 64,
            authorization = {
                iam = {
                    accesskey = "AKIDEXAMPLE",
                    secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                },
            },
        }
        SOAK_SLOW = {
            function_uri = "http://127.0.0.1:$FN_PORT/slow",
            timeout = $SLOW_MS + 5000,
        }
    }

    server {
        listen 127.0.0.1:$GW_PORT backlog=4096;

        location /apikey {
            access_by_lua_block { require("apisix.plugins.aws-lambda.openresty").run(SOAK_APIKEY) }
        }
        location /iam {
            access_by_lua_block { require("apisix.plugins.aws-lambda.openresty").run(SOAK_IAM) }
        }
        # nginx ends the request when the client goes: the outcome is never taken.
        location /slow-abort {
            lua_check_client_abort on;
            access_by_lua_block { require("apisix.plugins.aws-lambda.openresty").run(SOAK_SLOW) }
        }
        # nginx notices only when it writes the answer.
        location /slow {
            access_by_lua_block { require("apisix.plugins.aws-lambda.openresty").run(SOAK_SLOW) }
        }
        location = /stats {
            content_by_lua_block {
                local s = require("apisix.plugins.aws-lambda.native").stats()
                ngx.say(s.tickets or 0, " ", s.waiting or 0, " ", s.live_routes or 0)
            }
        }
    }
}
EOF

note "starting the function on 127.0.0.1:$FN_PORT and the gateway on 127.0.0.1:$GW_PORT"
"$NGINX" -p "$work/fn" -c conf/nginx.conf
wait_port "$FN_PORT" || die "the function nginx did not start (see $work/fn/logs/error.log)"
"$NGINX" -p "$work/gw" -c conf/nginx.conf
wait_port "$GW_PORT" || die "the gateway nginx did not start (see $work/gw/logs/error.log)"
worker=$(master_worker "$work/gw")

# --- helpers ------------------------------------------------------------------------------
gw() { curl -sS --max-time 5 "http://127.0.0.1:$GW_PORT$1"; }
stats() { gw /stats; }   # "tickets waiting live_routes"

# Prints "rss_kb fds threads"; fails if the worker is gone or was replaced.
worker_usage() {
    [ "$(master_worker "$work/gw")" = "$worker" ] \
        || die "the gateway worker changed (crashed?): see $work/gw/logs/error.log"
    local rss threads fds
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$worker/status")
    threads=$(awk '/^Threads:/ { print $2 }' "/proc/$worker/status")
    fds=$(find "/proc/$worker/fd" -mindepth 1 -maxdepth 1 | wc -l)
    echo "$rss $fds $threads"
}

total=0
hung_up_at=""     # when the hang-ups ended (epoch s)
reclaimed_after="" # s from then until no ticket was held or waited on
sample() {  # $1 = label
    local usage s
    usage=$(worker_usage)
    s=$(stats)
    if [ -n "$hung_up_at" ] && [ -z "$reclaimed_after" ] && [[ $s == "0 0 "* ]]; then
        reclaimed_after=$(( $(date +%s) - hung_up_at ))
    fi
    printf '%s\t%s\t%s\t%s\n' "$1" "$total" "${usage// /$'\t'}" "${s// /$'\t'}" >>"$samples"
    printf '  %-22s %9d requests  RSS %7d kB  fds %4d  threads %2d  tickets %4d  waiting %4d  routes %d\n' \
        "$1" "$total" $usage $s >&2
}

errors=0
declare -A rate=()
# wrk sends requests to route $1 for $2 seconds; sets `rate[$1]` (requests/s).
load() {
    local path=$1 seconds=$2 out="$work/wrk.out" got bad
    wrk -t"$THREADS" -c"$CONNS" -d"${seconds}s" "http://127.0.0.1:$GW_PORT$path" >"$out" 2>&1 \
        || { cat "$out" >&2; die "wrk failed on $path"; }
    got=$(awk '/ requests in / { print $1 }' "$out")
    bad=$(awk '/Non-2xx or 3xx responses:/ { e += $NF }
               /Socket errors:/ { gsub(",", ""); e += $4 + $6 + $8 + $10 }
               END { print e + 0 }' "$out")
    [ -n "$got" ] || { cat "$out" >&2; die "cannot read wrk's output"; }
    total=$((total + got))
    errors=$((errors + bad))
    rate[$path]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    if ((bad > 0)); then
        echo "  WARNING: $bad failed requests on $path" >&2
        cat "$out" >&2
    fi
}

# $1 clients request $2 and hang up after 0.3 s; prints how many hung up (curl rc 28).
abandon() {
    seq "$1" | xargs -P 50 -I{} sh -c \
        'curl -s -o /dev/null --max-time 0.3 "$0"; echo $?' "http://127.0.0.1:$GW_PORT$2" \
        | grep -c '^28$' || true
}

# --- run ----------------------------------------------------------------------------------
for path in /apikey /iam; do
    for _ in 1 2; do
        [ "$(gw "$path")" = "$FN_BODY" ] || die "$path does not answer with the function's body"
    done
done
note "warm-up: $WARMUP_SECONDS s on each route ($CONNS connections)"
load /apikey "$WARMUP_SECONDS"
load /iam "$WARMUP_SECONDS"
warm_total=$total
total=0
sample "after warm-up"

if ((ABORTS > 0)); then
    half=$((ABORTS / 2))
    note "abandoned tickets: $ABORTS clients hang up on a ${SLOW_MS} ms function after 0.3 s"
    gone_on=$(abandon "$half" /slow-abort)
    gone_off=$(abandon "$((ABORTS - half))" /slow)
    echo "  hung up: $gone_on with lua_check_client_abort on, $gone_off without" >&2
    hung_up_at=$(date +%s)
    ((gone_on + gone_off == ABORTS)) || die "expected all $ABORTS clients to time out"
    sample "after hang-ups"
fi

note "soak: $REQUESTS requests in ${CHUNK_SECONDS} s chunks, alternating /apikey and /iam"
chunk=0
while ((total < REQUESTS)); do
    chunk=$((chunk + 1))
    if ((chunk % 2)); then path=/apikey; else path=/iam; fi
    seconds=$CHUNK_SECONDS
    r=${rate[$path]:-0}
    if ((r > 0)); then  # the last chunk: about what is left
        left=$(( (REQUESTS - total + r - 1) / r ))
        ((left >= seconds)) || seconds=$((left > 0 ? left : 1))
    fi
    load "$path" "$seconds"
    sample "chunk $chunk $path ${rate[$path]}/s"
done

note "waiting up to $RECLAIM_WAIT s for every ticket to be taken or expire"
waited=0
read -r tickets waiting _ <<<"$(stats)"
while ((tickets + waiting > 0 && waited < RECLAIM_WAIT)); do
    sleep 1
    waited=$((waited + 1))
    read -r tickets waiting _ <<<"$(stats)"
done
sample "end (+${waited} s)"

# --- verdict ------------------------------------------------------------------------------
# Columns: label, requests, rss, fds, threads, tickets, waiting, routes.
read -r rss_warm fds_warm < <(awk -F'\t' 'NR == 1 { print $3, $4 }' "$samples")
read -r rss0 fds0 < <(awk -F'\t' '$1 ~ /^chunk [12] / { r = $3 > r ? $3 : r; f = $4 > f ? $4 : f }
                                   END { print r + 0, f + 0 }' "$samples")
((rss0 > 0)) || { rss0=$rss_warm; fds0=$fds_warm; }
read -r rss1 fds1 _ < <(awk -F'\t' 'END { print $3, $4 }' "$samples")
rss_max=$(awk -F'\t' '$3 > m { m = $3 } END { print m }' "$samples")
log_lines=$(grep -cE '\[(error|crit|alert|emerg)\]' "$work/gw/logs/error.log" || true)

echo
echo "soak summary: $total requests (+ $warm_total warm-up) on one worker, $CONNS connections"
echo "  RSS: $rss_warm kB after the warm-up, $rss0 kB over the first chunks, $rss1 kB at the end" \
     "(growth $((rss1 - rss0)) kB, limit +$MAX_RSS_GROWTH_KB kB; max $rss_max kB)"
echo "  open fds: $fds_warm after the warm-up, $fds0 over the first chunks, $fds1 at the end" \
     "(growth $((fds1 - fds0)), limit +$MAX_FD_GROWTH)"
reclaimed="none held ${reclaimed_after} s after the hang-ups"
[ -n "$reclaimed_after" ] || reclaimed="some still held"
echo "  abandoned: $ABORTS; tickets $tickets and waiting $waiting at the end ($reclaimed)"
echo "  failed requests: $errors; error-log lines at [error] or worse: $log_lines"

failed=()
((errors == 0)) || failed+=("$errors requests failed")
((log_lines == 0)) || failed+=("$log_lines error-log lines")
((rss1 - rss0 <= MAX_RSS_GROWTH_KB)) || failed+=("RSS grew by $((rss1 - rss0)) kB")
((fds1 - fds0 <= MAX_FD_GROWTH)) || failed+=("fds grew by $((fds1 - fds0))")
((tickets == 0 && waiting == 0)) || failed+=("tickets not reclaimed ($tickets held, $waiting waiting)")
if ((${#failed[@]})); then
    grep -E '\[(error|crit|alert|emerg)\]' "$work/gw/logs/error.log" | tail -n 5 >&2 || true
    echo "soak: FAIL: $(IFS=';'; echo "${failed[*]}")" >&2
    exit 1
fi
echo "soak: PASS"
