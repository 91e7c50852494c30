#!/usr/bin/env bash
# Measures the plugin against nginx proxy_pass and a raw Lua cosocket client, all in
# front of the same local "function" (a plain nginx returning a small fixed body), and
# writes the results to docs/benchmarks.md.
#
#   ci/bench.sh                                  # defaults: 3 rounds of 10 s runs, ~6 min
#   BENCH_DURATION=2 BENCH_ROUNDS=1 BENCH_OUT=/tmp/b.md ci/bench.sh   # smoke test
#
# One gateway nginx (master + 1 worker) with one location per variant; wrk -t2 at each
# connection count; rounds interleave the variants (rotating which goes first) so that
# each round's runs share the machine's state. Per run: req/s, p50/p99 latency (wrk
# --latency) and the gateway worker's CPU (utime+stime of the whole process, i.e. its
# threads too, including the plugin's runtime thread) divided by the requests served;
# the connections the function accepted per request, and the share of its new TLS
# connections that resumed a session ($ssl_session_reused), from its access log.
# Reported: medians over rounds, and each as a ratio to proxy_pass in the same round.
#
# Environment (defaults):
#   BENCH_DURATION=10   seconds per measured run
#   BENCH_WARMUP=1      seconds of discarded load before each measured run
#   BENCH_ROUNDS=3      interleaved rounds
#   BENCH_CONNS="32 128"
#   BENCH_VARIANTS="cosocket apikey iam apikey_pool iam_pool iam_token proxy_tls proxy_tls13
#                   iam_tls_default iam_tls iam_tls_nokeep iam_tls_h2 iam_tls_default_h1
#                   cosocket_tls cosocket_tls_pool
#                   invoke_pool"
#                       (also known, not in the default: stream_proxy and stream, a
#                       10 MiB answer through proxy_pass with proxy_buffering off and
#                       through the plugin, which streams it; invoke_stream, the same
#                       answer from InvokeWithResponseStream (invoke_mode
#                       response_stream: event-stream frames decoded); for these, MB/s is
#                       req/s x 10.49 and CPU per MB is CPU/req / 10.49)
#                       (proxy_pass is always measured: it is the baseline; proxy_tls13 is
#                       added when an HTTPS variant is measured: it is their baseline)
#   BENCH_GATEWAY_PORT=21480  BENCH_FUNCTION_PORT=21490  BENCH_FUNCTION_TLS_PORT=21491
#                       (loopback; the last is the function's HTTPS listener)
#   BENCH_OUT=docs/benchmarks.md   where the report goes ("-" for stdout only)
#   BENCH_BUILD=1       run ci/build.sh first (0: use build/lib as it is)
#   BENCH_KEEP=0        1: keep the work directory (configs, logs, raw results)
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
root=$(pwd)

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-1}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-32 128}
GW_PORT=${BENCH_GATEWAY_PORT:-21480}
FN_PORT=${BENCH_FUNCTION_PORT:-21490}
FN_TLS_PORT=${BENCH_FUNCTION_TLS_PORT:-21491}
OUT=${BENCH_OUT:-docs/benchmarks.md}
BUILD=${BENCH_BUILD:-1}
KEEP=${BENCH_KEEP:-0}
THREADS=2

NGINX=/usr/sbin/nginx
FN_BODY='{"message":"hello from the bench function"}'
# What the Invoke variant's function returns: a proxy response whose body is FN_BODY
# (base64, which needs no quoting in nginx.conf), so the client gets the same bytes.
INVOKE_PAYLOAD='{"statusCode":200,"headers":{"content-type":"application/json"},"isBase64Encoded":true,"body":"'$(printf %s "$FN_BODY" | base64 -w0)'"}'

# Idle connections the floor client and the *_pool variants keep: more than the
# connections wrk opens, so that none of them pays a connect per request.
POOL=256

# The test CA of t/45-tls.t signs the function's HTTPS certificate (for localhost and
# 127.0.0.1); the gateway trusts it through SSL_CERT_FILE, as a deployment would its own.
CERT_DIR=$root/t/cert

# Variant id, label, gateway path. proxy_pass is the baseline of every ratio, except
# for the plugin over HTTPS, whose baseline is proxy_pass over HTTPS (BASE_OF).
VARIANTS=(proxy)
for v in ${BENCH_VARIANTS:-cosocket apikey iam apikey_pool iam_pool iam_token proxy_tls proxy_tls13 iam_tls_default iam_tls iam_tls_nokeep iam_tls_h2 iam_tls_default_h1 cosocket_tls cosocket_tls_pool invoke_pool}; do
    [ "$v" = proxy ] || VARIANTS+=("$v")
done
if [[ " ${VARIANTS[*]} " =~ \ (stream|invoke_stream)\  ]] && [[ " ${VARIANTS[*]} " != *" stream_proxy "* ]]; then
    VARIANTS+=(stream_proxy)
fi
if [[ " ${VARIANTS[*]} " =~ \ (iam_tls|iam_tls_default|iam_tls_nokeep|iam_tls_h2|iam_tls_default_h1|cosocket_tls|cosocket_tls_pool)\  ]] \
        && [[ " ${VARIANTS[*]} " != *" proxy_tls13 "* ]]; then
    VARIANTS+=(proxy_tls13)
fi
declare -A LABEL=(
    [proxy]="nginx proxy_pass (keepalive 64): ceiling"
    [cosocket]="raw Lua cosocket HTTP/1.1: floor for Lua clients"
    [apikey]="plugin, apikey"
    [iam]="plugin, IAM static keys (SigV4)"
    [apikey_pool]="plugin, apikey, keepalive_pool $POOL (not the default)"
    [iam_pool]="plugin, IAM static keys, keepalive_pool $POOL (not the default)"
    [iam_token]="plugin, IAM static keys + session token, keepalive_pool $POOL"
    [proxy_tls]="nginx proxy_pass over HTTPS, nginx's default protocols (TLS 1.2 here; keepalive 64)"
    [proxy_tls13]="nginx proxy_pass over HTTPS, TLS 1.3 (keepalive 64): HTTPS ceiling (×pp: vs proxy_pass)"
    [iam_tls_default]="plugin, IAM over HTTPS (ssl_verify on), defaults: HTTP/2 (h2 by ALPN), keepalive_pool 5 (×pp: vs proxy_pass over TLS 1.3)"
    [iam_tls]="plugin, IAM over HTTPS (ssl_verify on), HTTP/1.1 (http2 false), keepalive_pool $POOL (×pp: vs proxy_pass over TLS 1.3)"
    [iam_tls_nokeep]="plugin, IAM over HTTPS, keepalive false: a TLS handshake per request (×pp: vs proxy_pass over TLS 1.3)"
    [iam_tls_h2]="plugin, IAM over HTTPS, HTTP/2, keepalive_pool $POOL (×pp: vs proxy_pass over TLS 1.3)"
    [iam_tls_default_h1]="plugin, IAM over HTTPS, defaults but http2 false: HTTP/1.1, keepalive_pool 5 (×pp: vs proxy_pass over TLS 1.3)"
    [cosocket_tls]="raw Lua cosocket over HTTPS, TLS 1.3, session reuse, pool 5 (×pp: vs proxy_pass over TLS 1.3)"
    [cosocket_tls_pool]="raw Lua cosocket over HTTPS, TLS 1.3, session reuse, pool $POOL (×pp: vs proxy_pass over TLS 1.3)"
    [invoke_pool]="plugin, direct Invoke API (IAM, apigw_v2 event), keepalive_pool $POOL"
    [stream_proxy]="nginx proxy_pass, proxy_buffering off, a 10 MiB answer: streaming ceiling"
    [stream]="plugin, no auth, keepalive_pool $POOL, a 10 MiB answer (streamed; ×pp: vs proxy_pass streaming it)"
    [invoke_stream]="plugin, InvokeWithResponseStream (IAM), keepalive_pool $POOL, the same 10 MiB answer in event-stream frames (×pp: vs proxy_pass streaming it)"
)
declare -A BASE_OF=([stream]=stream_proxy [invoke_stream]=stream_proxy [iam_tls]=proxy_tls13 [iam_tls_default]=proxy_tls13 [cosocket_tls]=proxy_tls13
                   [cosocket_tls_pool]=proxy_tls13 [iam_tls_nokeep]=proxy_tls13
                   [iam_tls_h2]=proxy_tls13 [iam_tls_default_h1]=proxy_tls13)
declare -A PATH_OF=(
    [proxy]=/proxy/bench [cosocket]=/cosocket/bench [apikey]=/apikey/bench [iam]=/iam/bench
    [apikey_pool]=/apikey-pool/bench [iam_pool]=/iam-pool/bench [iam_token]=/iam-token/bench
    [proxy_tls]=/proxy-tls/bench [iam_tls]=/iam-tls/bench [invoke_pool]=/invoke/bench
    [proxy_tls13]=/proxy-tls13/bench [iam_tls_default]=/iam-tls-default/bench
    [cosocket_tls]=/cosocket-tls/bench [cosocket_tls_pool]=/cosocket-tls-pool/bench
    [iam_tls_nokeep]=/iam-tls-nokeep/bench [iam_tls_h2]=/iam-tls-h2/bench
    [iam_tls_default_h1]=/iam-tls-default-h1/bench
    [stream_proxy]=/proxy-stream/10m [stream]=/stream/10m [invoke_stream]=/invoke-stream/10m
)
# What a variant's answer must be (the function's body, or a file it serves).
STREAM_BODY_BYTES=10485760
PENDING=""

die() { echo "bench: $*" >&2; exit 1; }
note() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

for v in "${VARIANTS[@]}"; do
    [ -n "${PATH_OF[$v]:-}" ] || die "BENCH_VARIANTS: unknown variant '$v' (known: ${!PATH_OF[*]})"
done
for v in DURATION WARMUP ROUNDS GW_PORT FN_PORT FN_TLS_PORT; do
    [[ ${!v} =~ ^[0-9]+$ ]] && ((${!v} > 0)) || die "$v must be a positive integer (got '${!v}')"
done
for c in $CONNS; do
    [[ $c =~ ^[0-9]+$ ]] && ((c >= THREADS)) || die "BENCH_CONNS: '$c' is not a count >= $THREADS"
done

# --- preconditions ----------------------------------------------------------------------
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v wrk >/dev/null; then
    note "installing wrk (Debian)"
    if ! apt-cache policy wrk 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        $sudo apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wrk \
        >/dev/null
fi
for tool in wrk curl pgrep awk; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done
[ -x "$NGINX" ] || die "$NGINX is missing (ci/install-deps.sh --test installs it)"
for m in $NGINX_LUA_MODULES; do
    [ -f "$m" ] || die "$m is missing (ci/install-deps.sh --test installs it)"
done
for port in "$GW_PORT" "$FN_PORT" "$FN_TLS_PORT"; do
    if port_in_use "$port"; then
        die "port $port is in use: set BENCH_GATEWAY_PORT / BENCH_FUNCTION_PORT / BENCH_FUNCTION_TLS_PORT to free ports"
    fi
done
[ "$(printf '%s\n' "$GW_PORT" "$FN_PORT" "$FN_TLS_PORT" | sort -u | wc -l)" -eq 3 ] \
    || die "the gateway, function and function TLS ports must differ"
for f in ca.crt server.crt server.key; do
    [ -r "$CERT_DIR/$f" ] || die "$CERT_DIR/$f is missing (the test CA for the HTTPS variants)"
done
"$NGINX" -V 2>&1 | grep -q -- --with-http_ssl_module || die "$NGINX has no http_ssl_module"

if [ "$BUILD" = 1 ]; then
    note "building the native library (ci/build.sh)"
    ci/build.sh >&2
fi
[ -f build/lib/aws_lambda_native.so ] || die "build/lib/aws_lambda_native.so is missing: run ci/build.sh"

# --- start the function and the gateway -------------------------------------------------
work=$(mktemp -d /tmp/aws-lambda-bench.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/fn/logs" "$work/fn/conf" "$work/gw/logs" "$work/gw/conf" "$work/fn/big"
# The streaming variants' answer: a static file (Content-Length; over 64 KiB, so the
# plugin streams it).
head -c "$STREAM_BODY_BYTES" /dev/urandom >"$work/fn/big/10m"
# InvokeWithResponseStream's answer for the same body, as Lambda frames it: the HTTP
# integration prelude, the body in 64 KiB PayloadChunk events, InvokeComplete (the mock's
# frame encoder, checked against botocore's parser in its tests).
python3 - "$work/fn/big/10m" "$work/fn/invoke-stream" <<'PY'
import sys
sys.path.insert(0, "t/mock")
from lambda_api import complete_frame, event_frame
body = open(sys.argv[1], "rb").read()
prelude = b'{"statusCode":200,"headers":{"content-type":"application/octet-stream"}}' + b"\0" * 8
frames = [event_frame("PayloadChunk", prelude)]
frames += [event_frame("PayloadChunk", body[i:i + 65536]) for i in range(0, len(body), 65536)]
frames.append(complete_frame())
open(sys.argv[2], "wb").write(b"".join(frames))
PY
results="$work/results.tsv"
: >"$results"

wrk_pid=""
cleanup() {
    local rc=$?
    if [ -n "$wrk_pid" ]; then kill "$wrk_pid" 2>/dev/null || true; fi
    stop_nginx "$work/gw"
    stop_nginx "$work/fn"
    if [ "$KEEP" = 1 ] || [ "$rc" -ne 0 ]; then
        echo "bench: work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$work/fn/conf/nginx.conf" <<EOF
$NGINX_WORKER_USER
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    # One line per new connection (its first request), for the connections the gateway
    # opened and, over TLS, whether they resumed a session ("r") or not (".").
    map \$connection_requests \$fn_first_request { 1 1; default 0; }
    log_format fn_new_conn '\$ssl_session_reused';
    server {
        listen 127.0.0.1:$FN_PORT backlog=4096;
        access_log logs/new-conns.log fn_new_conn if=\$fn_first_request;
        location / {
            default_type application/json;
            return 200 '$FN_BODY';
        }
        # the Lambda Invoke API, for the direct-invocation variant
        location /2015-03-31/functions/ {
            default_type application/json;
            return 200 '$INVOKE_PAYLOAD';
        }
        location /big/ {
            alias $work/fn/big/;
            default_type application/octet-stream;
        }
        # InvokeWithResponseStream: the framed file; a POST to a static file is a 405,
        # which error_page turns into the file (an internal GET)
        location = /2021-11-15/functions/bench/response-streaming-invocations {
            alias $work/fn/invoke-stream;
            default_type application/vnd.awslambda.http-integration-response;
            error_page 405 =200 \$uri;
        }
    }
    server {
        # h2 for the plugin's http2 rows (offered by ALPN; HTTP/1.1 clients are unaffected)
        listen 127.0.0.1:$FN_TLS_PORT ssl http2 backlog=4096;
        http2_max_concurrent_streams 1024;
        ssl_certificate $CERT_DIR/server.crt;
        ssl_certificate_key $CERT_DIR/server.key;
        ssl_session_cache shared:bench_tls:1m;
        # nginx 1.22 offers at most TLS 1.2 unless told; AWS endpoints speak TLS 1.3
        ssl_protocols TLSv1.2 TLSv1.3;
        access_log logs/new-conns.log fn_new_conn if=\$fn_first_request;
        location / {
            default_type application/json;
            return 200 '$FN_BODY';
        }
    }
}
EOF

max_conns=$(tr ' ' '\n' <<<"$CONNS" | sort -n | tail -1)
((max_conns <= POOL)) || echo "bench: note: more connections ($max_conns) than pooled ($POOL)" >&2
cat >"$work/gw/conf/nginx.conf" <<EOF
$NGINX_LOAD_MODULES
$NGINX_WORKER_USER
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
env SSL_CERT_FILE=$CERT_DIR/ca.crt;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    lua_package_path "$root/lua/?.lua;$root/ci/bench/?.lua;;";
    lua_package_cpath "$root/build/lib/?.so;;";

    init_by_lua_block {
        BENCH_APIKEY = {
            function_uri = "http://127.0.0.1:$FN_PORT/fn",
            authorization = { apikey = "k" },
        }
        BENCH_IAM = {
            function_uri = "http://127.0.0.1:$FN_PORT/fn",
            authorization = {
                iam = {
                    accesskey = "AKIDEXAMPLE",
                    secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                },
            },
        }
        -- the same with more idle connections kept than wrk opens
        BENCH_APIKEY_POOL = {
            function_uri = BENCH_APIKEY.function_uri,
            authorization = { apikey = "k" },
            keepalive_pool = $POOL,
        }
        BENCH_IAM_POOL = {
            function_uri = BENCH_IAM.function_uri,
            authorization = {
                iam = {
                    accesskey = "AKIDEXAMPLE",
                    secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                },
            },
            keepalive_pool = $POOL,
        }
        BENCH_IAM_TOKEN = {
            function_uri = BENCH_IAM.function_uri,
            authorization = {
                iam = {
                    accesskey = "ASIAEXAMPLE",
                    secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                    -- about the length of a real STS session token
                    session_token = string.rep("IQoJb3JpZ2luX2VjEXAMPLETOKEN/", 28),
                },
            },
            keepalive_pool = $POOL,
        }
        -- a 10 MiB answer, streamed
        BENCH_STREAM = {
            function_uri = "http://127.0.0.1:$FN_PORT/big",
            keepalive_pool = $POOL,
            timeout = 30000,
        }
        -- the same answer from InvokeWithResponseStream
        BENCH_INVOKE_STREAM = {
            function_name = "bench",
            invoke_mode = "response_stream",
            invoke_endpoint = "http://127.0.0.1:$FN_PORT",
            authorization = BENCH_IAM_POOL.authorization,
            keepalive_pool = $POOL,
            timeout = 30000,
        }
        -- direct invocation: the request goes as an API Gateway 2.0 event
        BENCH_INVOKE = {
            function_name = "bench",
            invoke_endpoint = "http://127.0.0.1:$FN_PORT",
            authorization = BENCH_IAM_POOL.authorization,
            keepalive_pool = $POOL,
        }
        -- HTTPS with verification on (the default), trusting the test CA
        BENCH_IAM_TLS = {
            function_uri = "https://127.0.0.1:$FN_TLS_PORT/fn",
            authorization = BENCH_IAM_POOL.authorization,
            keepalive_pool = $POOL,
            http2 = false,
        }
        -- the same at the defaults (keepalive_pool 5)
        BENCH_IAM_TLS_DEFAULT = {
            function_uri = BENCH_IAM_TLS.function_uri,
            authorization = BENCH_IAM_POOL.authorization,
        }
        -- HTTP/2 (the default; BENCH_IAM_TLS turns it off): one multiplexed connection,
        -- another past 128 calls in flight
        BENCH_IAM_TLS_H2 = {
            function_uri = BENCH_IAM_TLS.function_uri,
            authorization = BENCH_IAM_POOL.authorization,
            keepalive_pool = $POOL,
            http2 = true,
        }
        BENCH_IAM_TLS_DEFAULT_H1 = {
            function_uri = BENCH_IAM_TLS.function_uri,
            authorization = BENCH_IAM_POOL.authorization,
            http2 = false,
        }
        -- a new connection for every request: what a handshake costs, and how many resume
        BENCH_IAM_TLS_NOKEEP = {
            function_uri = BENCH_IAM_TLS.function_uri,
            authorization = BENCH_IAM_POOL.authorization,
            keepalive = false,
        }
    }
    # the cosocket floor over HTTPS verifies the function's certificate, over TLS 1.3
    lua_ssl_trusted_certificate $CERT_DIR/ca.crt;
    lua_ssl_protocols TLSv1.3;

    upstream bench_function {
        server 127.0.0.1:$FN_PORT;
        keepalive 64;
        keepalive_requests 10000000;
        keepalive_timeout 60s;
    }

    upstream bench_function_tls {
        server 127.0.0.1:$FN_TLS_PORT;
        keepalive 64;
        keepalive_requests 10000000;
        keepalive_timeout 60s;
    }

    server {
        listen 127.0.0.1:$GW_PORT backlog=4096;

        location /proxy/ {
            proxy_pass http://bench_function/fn/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location /proxy-stream/ {
            proxy_pass http://bench_function/big/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
        location ~ ^/stream/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(BENCH_STREAM, ngx.var[1])
            }
        }
        location ~ ^/cosocket/(.*)\$ {
            access_by_lua_block {
                require("floor").run("127.0.0.1", $FN_PORT, "/fn/", ngx.var[1], $POOL)
            }
        }
        location ~ ^/apikey/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(BENCH_APIKEY, ngx.var[1])
            }
        }
        location ~ ^/iam/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(BENCH_IAM, ngx.var[1])
            }
        }
        location ~ ^/apikey-pool/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(BENCH_APIKEY_POOL, ngx.var[1])
            }
        }
        location ~ ^/iam-pool/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(BENCH_IAM_POOL, ngx.var[1])
            }
        }
        location ~ ^/iam-token/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(BENCH_IAM_TOKEN, ngx.var[1])
            }
        }
        location /proxy-tls/ {
            proxy_pass https://bench_function_tls/fn/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $CERT_DIR/ca.crt;
            proxy_ssl_name localhost;
            proxy_ssl_session_reuse on;
        }
        location /proxy-tls13/ {
            proxy_pass https://bench_function_tls/fn/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $CERT_DIR/ca.crt;
            proxy_ssl_name localhost;
            proxy_ssl_session_reuse on;
            proxy_ssl_protocols TLSv1.3;
        }
        location ~ ^/iam-tls-default/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(BENCH_IAM_TLS_DEFAULT,
                                                                   ngx.var[1])
            }
        }
        location ~ ^/iam-tls-nokeep/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(BENCH_IAM_TLS_NOKEEP,
                                                                   ngx.var[1])
            }
        }
        location ~ ^/cosocket-tls/(.*)\$ {
            access_by_lua_block {
                require("floor").run("127.0.0.1", $FN_TLS_PORT, "/fn/", ngx.var[1], 5,
                                     "localhost")
            }
        }
        location ~ ^/cosocket-tls-pool/(.*)\$ {
            access_by_lua_block {
                require("floor").run("127.0.0.1", $FN_TLS_PORT, "/fn/", ngx.var[1], $POOL,
                                     "localhost")
            }
        }
        location ~ ^/invoke-stream/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(BENCH_INVOKE_STREAM,
                                                                   ngx.var[1], "/invoke-stream/*")
            }
        }
        location ~ ^/invoke/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(BENCH_INVOKE, ngx.var[1],
                                                                   "/invoke/*")
            }
        }
        location ~ ^/iam-tls-h2/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(BENCH_IAM_TLS_H2, ngx.var[1])
            }
        }
        location ~ ^/iam-tls-default-h1/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(BENCH_IAM_TLS_DEFAULT_H1,
                                                                   ngx.var[1])
            }
        }
        location ~ ^/iam-tls/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(BENCH_IAM_TLS, ngx.var[1])
            }
        }
    }
}
EOF

note "starting the function on 127.0.0.1:$FN_PORT (HTTPS: $FN_TLS_PORT) and the gateway on 127.0.0.1:$GW_PORT"
"$NGINX" -p "$work/fn" -c conf/nginx.conf
{ wait_port "$FN_PORT" && wait_port "$FN_TLS_PORT"; } || die "the function nginx did not start (see $work/fn/logs/error.log)"
"$NGINX" -p "$work/gw" -c conf/nginx.conf
wait_port "$GW_PORT" || die "the gateway nginx did not start (see $work/gw/logs/error.log)"
gw_worker=$(master_worker "$work/gw")
fn_worker=$(master_worker "$work/fn")

# --- check that every variant answers as the function does -------------------------------
note "checking that every variant answers 200 with the function's body"
for v in "${VARIANTS[@]}"; do
    url="http://127.0.0.1:$GW_PORT${PATH_OF[$v]}"
    for _ in 1 2; do  # the second request goes over a reused connection
        got=$(curl -sS -o "$work/body" -w '%{http_code}' --max-time 5 "$url") \
            || die "$v: $url failed"
        if [[ $v == stream* || $v == invoke_stream ]]; then
            cmp -s "$work/body" "$work/fn/big/10m" && body=$FN_BODY || body="(not the file)"
        else
            body=$(cat "$work/body")
        fi
        if [ "$got" != 200 ] || [ "$body" != "$FN_BODY" ]; then
            echo "bench: $v: $url answered $got with body: $body" >&2
            tail -5 "$work/gw/logs/error.log" >&2 || true
            die "$v does not answer like the function"
        fi
    done
    echo "  ${LABEL[$v]}: 200, $FN_BODY" >&2
done

# --- measure ------------------------------------------------------------------------------
proc_ticks() {  # utime + stime of a whole process (all threads), in clock ticks
    local stat
    stat=$(<"/proc/$1/stat") || die "process $1 is gone"
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat  # $1 is field 3 (state): utime is field 14, stime field 15
    echo $(( ${12} + ${13} ))
}
machine_busy() {  # ticks all CPUs spent not idle (user nice system irq softirq steal)
    local _cpu user nice system idle iowait irq softirq steal _rest
    read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
    echo $(( user + nice + system + irq + softirq + steal ))
}
children_ticks() {  # CPU of this shell's finished children (wrk), in 1/100 s
    # `times` must run in this shell (a subshell's children are not this shell's): the
    # caller does `times >"$work/times"` and this reads the file.
    awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] }
        printf "%d\n", t * 100 + 0.5 }' "$work/times"
}
to_us() {  # wrk duration ("812.00us", "1.23ms", "2.00s", "1.00m") -> microseconds
    awk -v d="$1" 'BEGIN {
        if (d ~ /us$/) m = 1; else if (d ~ /ms$/) m = 1000; else if (d ~ /m$/) m = 60e6
        else if (d ~ /s$/) m = 1e6; else m = -1
        sub(/[a-z]+$/, "", d); printf "%.1f\n", d * m }'
}

new_conn_counts() {  # "<new connections> <of them, resumed TLS sessions>" at the function
    awk '{ n++ } $1 == "r" { r++ } END { print n + 0, r + 0 }' "$work/fn/logs/new-conns.log"
}

hz=$(getconf CLK_TCK)
runs=0
total_runs=$(( ROUNDS * $(wc -w <<<"$CONNS") * ${#VARIANTS[@]} ))
note "measuring: $ROUNDS round(s) x conns {$CONNS} x ${#VARIANTS[@]} variants," \
     "${WARMUP} s warm-up + ${DURATION} s each (~$(( total_runs * (WARMUP + DURATION + 1) / 60 + 1 )) min)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((round = 1; round <= ROUNDS; round++)); do
    for c in $CONNS; do
        # rotate the order each round so that no variant always runs first or last
        n=${#VARIANTS[@]}
        for ((i = 0; i < n; i++)); do
            v=${VARIANTS[$(( (i + round - 1) % n ))]}
            url="http://127.0.0.1:$GW_PORT${PATH_OF[$v]}"
            wrk -t"$THREADS" -c"$c" -d"${WARMUP}s" "$url" >/dev/null

            [ "$(master_worker "$work/gw")" = "$gw_worker" ] \
                || die "the gateway worker changed (crashed?): see $work/gw/logs/error.log"
            gw0=$(proc_ticks "$gw_worker"); fn0=$(proc_ticks "$fn_worker")
            m0=$(machine_busy); times >"$work/times"; w0=$(children_ticks)
            read -r nc0 nr0 <<<"$(new_conn_counts)"
            t0=$(date +%s.%N)
            wrk -t"$THREADS" -c"$c" -d"${DURATION}s" --latency "$url" >"$work/wrk.out" &
            wrk_pid=$!
            wait "$wrk_pid" || die "wrk failed on $url"
            wrk_pid=""
            t1=$(date +%s.%N)
            gw1=$(proc_ticks "$gw_worker"); fn1=$(proc_ticks "$fn_worker")
            m1=$(machine_busy); times >"$work/times"; w1=$(children_ticks)
            read -r nc1 nr1 <<<"$(new_conn_counts)"
            cp "$work/wrk.out" "$work/wrk-r$round-c$c-$v.out"

            rps=$(awk '/^Requests\/sec:/ { print $2 }' "$work/wrk.out")
            requests=$(awk '/ requests in / { print $1 }' "$work/wrk.out")
            p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$work/wrk.out")")
            p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$work/wrk.out")")
            errors=$(awk '/Non-2xx or 3xx responses:/ { e += $NF }
                          /Socket errors:/ { gsub(",", ""); e += $4 + $6 + $8 + $10 }
                          END { print e + 0 }' "$work/wrk.out")
            [ -n "$rps" ] && [ -n "$requests" ] && ((requests > 0)) \
                || { cat "$work/wrk.out" >&2; die "cannot read wrk's output for $v"; }
            cpu_us=$(awk -v t="$(( gw1 - gw0 ))" -v hz="$hz" -v n="$requests" \
                'BEGIN { printf "%.2f\n", t / hz * 1e6 / n }')
            # CPUs kept busy by anything but the gateway, the function and wrk: other work
            # on the machine during the run (a noise indicator).
            other=$(awk -v m="$(( m1 - m0 ))" -v ours="$(( gw1 - gw0 + fn1 - fn0 ))" \
                -v w="$(( w1 - w0 ))" -v hz="$hz" -v t0="$t0" -v t1="$t1" \
                'BEGIN { o = (m - ours) / hz - w / 100; if (o < 0) o = 0
                         printf "%.2f\n", o / (t1 - t0) }')
            # New connections per request: the connections the function accepted from
            # the gateway during the run (wrk keeps its own connections to the gateway).
            opens=$(awk -v o="$(( nc1 - nc0 ))" -v n="$requests" 'BEGIN { printf "%.3f\n", o / n }')
            tls_new=0 tls_resumed=0
            if [[ $v == *tls* ]]; then
                tls_new=$(( nc1 - nc0 )) tls_resumed=$(( nr1 - nr0 ))
            fi
            # (then, for diagnostics: ticks of the machine, the gateway, the function,
            # wrk, and the run's wall time; last, the new TLS connections and of them
            # those that resumed a session)
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$c" \
                "$v" "$rps" "$p50" "$p99" "$cpu_us" "$requests" "$errors" "$other" "$opens" \
                "$(( m1 - m0 ))" "$(( gw1 - gw0 ))" "$(( fn1 - fn0 ))" "$(( w1 - w0 ))" \
                "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" \
                "$tls_new" "$tls_resumed" >>"$results"
            runs=$((runs + 1))
            printf '  [%d/%d] round %d, %3d conns, %-17s %7.0f req/s  p50 %8.0f us  p99 %8.0f us  CPU %6.1f us/req  new conns/req %s  resumed %s/%s  errors %s  other load %s CPUs\n' \
                "$runs" "$total_runs" "$round" "$c" "$v" "$rps" "$p50" "$p99" "$cpu_us" \
                "$opens" "$tls_resumed" "$tls_new" "$errors" "$other" >&2
            if ((errors > 0)); then
                echo "  WARNING: $v answered $errors requests with errors (see $work/gw/logs/error.log)" >&2
            fi
        done
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ----------------------------------------------------------------------------
order="${VARIANTS[*]}"
labels=""
bases=""
for v in "${VARIANTS[@]}"; do
    labels+="${labels:+|}${LABEL[$v]}"
    bases+="${bases:+ }${BASE_OF[$v]:-proxy}"
done
table=$(awk -v order="$order" -v labels="$labels" -v bases="$bases" -v conns="$CONNS" -v pending="$PENDING" \
    -v mode=summary -f ci/bench/summarize.awk "$results")
raw=$(awk -v order="$order" -v labels="$labels" -v conns="$CONNS" -v mode=raw \
    -f ci/bench/summarize.awk "$results")
other_max=$(awk -F'\t' '$10 > m { m = $10 } END { printf "%.2f", m }' "$results")
other_med=$(awk -F'\t' '{ print $10 }' "$results" | sort -n \
    | awk '{ a[NR] = $1 } END { printf "%.2f", NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')

echo
echo "$table"

# Everything from this line on in an existing report is written by hand about other
# measurements (criterion, the scale run) and is kept.
KEPT_MARK='<!-- ci/bench.sh keeps everything below this line -->'
if [ "$OUT" != "-" ]; then
    kept=""
    [ ! -f "$OUT" ] || kept=$(awk -v m="$KEPT_MARK" 'found || $0 == m { found = 1; print }' "$OUT")
    cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    lib_version=$(git --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)
    if ! git --no-optional-locks diff --quiet HEAD -- src lua Cargo.toml Cargo.lock 2>/dev/null; then
        lib_version+=" with uncommitted changes in src/ or lua/"
    fi
    mkdir -p "$(dirname "$OUT")"
    cat >"$OUT" <<EOF
# Benchmarks

Generated by \`ci/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'); running it again replaces
everything down to the sections written by hand at the end.

## Results

$table

\`×pp\` is the ratio to nginx \`proxy_pass\` (the first row of each connection
count; the HTTPS rows name their own baseline):
above 1 is better for req/s, below 1 is better for latency and CPU. \`CPU/req\` is the
gateway worker's CPU time (all its threads) per request. \`new conns/req\` is the number
of connections the function accepted per request served (from its access log, which
writes one line per new connection): 0 means every exchange reused a pooled connection.
\`TLS resumed\` is the share of those new connections, over all rounds, that resumed a
TLS session (nginx's \`\$ssl_session_reused\` at the function; "-" for plain HTTP, or
when no connection was opened after the warm-up). \`errors\` counts non-2xx
answers and socket errors over all rounds (it must be 0). The variants marked "not
measured yet" are placeholders.

Machine: $(nproc) CPUs ($cpu_model), kernel $(uname -r); nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'),
wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }'); tree at $lib_version.
Run: $ROUNDS round(s) x ${DURATION} s per run (after ${WARMUP} s of warm-up), wrk -t$THREADS,
connections {$CONNS}. Load average before/after: $load_before / $load_after. Other work on
the machine during the runs (CPUs busy outside the gateway, the function and wrk):
median $other_med, max $other_max.

## Method

- A **function** (a plain nginx, one worker, keepalive on) answers every request with
  the same ${#FN_BODY}-byte body \`$FN_BODY\`.
- One **gateway** nginx (master + 1 worker, Debian's nginx with lua-nginx-module, no
  access log) has one location per variant, all in front of that function on loopback:
  - **proxy_pass**: an \`upstream\` block with \`keepalive 64\`, \`proxy_http_version 1.1\`
    and \`proxy_set_header Connection ""\`. The ceiling: no Lua at all. (With more
    connections than 64, nginx closes what it cannot keep idle, so at 128 connections part
    of its requests pay a connect: the ceiling is lower there.)
  - **raw Lua cosocket**: \`ci/bench/floor.lua\` in \`access_by_lua\`: connect (or reuse a
    pooled connection, pool of $POOL), send a GET, read the status line, headers and a
    Content-Length body, \`setkeepalive\`, print the body. The least any Lua client on
    cosockets does (APISIX's own plugin goes through lua-resty-http, which does more),
    so the floor for Lua clients.
  - **plugin, apikey** and **plugin, IAM static keys** (SigV4 signing of every request):
    \`require("apisix.plugins.aws-lambda.openresty").run(CONF, ngx.var[1])\` in
    \`access_by_lua\`, with the configuration tables made in \`init_by_lua\` and the
    plugin's defaults (keepalive on, \`keepalive_pool\` 5: 5 idle connections per
    endpoint and worker once the load drops, the default of APISIX's plugin too; the
    surplus of a burst is closed after it stayed idle for a second).
  - **plugin, ..., keepalive_pool $POOL**: the same with more idle connections kept
    than wrk opens, like the floor client. Next to the default rows it shows what the
    default pool costs under load (before 0.1.0's pool grace period: connection churn).
  - **plugin, IAM static keys + session token**: the same with a session token about as
    long as a real STS one (812 bytes) and a pool of $POOL: next to the pooled IAM row, it
    shows what the token costs (a longer canonical request to hash, one more header).
  - **HTTPS**: the function also listens with TLS, with a certificate for 127.0.0.1 from
    the test CA in \`t/cert\`. **proxy_pass over HTTPS, TLS 1.3** (upstream \`keepalive
    64\`, \`proxy_ssl_verify on\` against that CA, session reuse, \`proxy_ssl_protocols
    TLSv1.3\`) is the HTTPS ceiling, and speaks the protocol the plugin speaks; the
    HTTPS rows below it (the plugin with \`ssl_verify\` on, the default, trusting the CA
    through \`SSL_CERT_FILE\`, at the defaults and with a pool of $POOL; the cosocket
    floor over TLS 1.3, verifying, offering the last session to each handshake, with a
    pool of 5 and of $POOL; the plugin with \`keepalive: false\`, a handshake per
    request, which shows what a new connection costs and how many resume) are compared
    with it: their ×pp columns are ratios to it in
    the same round, and its own are ratios to plain proxy_pass. **proxy_pass over HTTPS,
    nginx's default protocols** is the earlier ceiling row (nginx 1.22 offers at most
    TLS 1.2 to upstreams by default), kept for comparison with older reports.
- Before measuring, each variant must answer 200 with the function's exact body (twice,
  so that the second goes over a reused connection), or the script fails.
- Each run: wrk -t$THREADS at a given connection count for ${WARMUP} s (discarded), then
  ${DURATION} s with \`--latency\`. Around the measured run the script reads utime+stime of
  the gateway worker from \`/proc/<pid>/stat\` (the whole process: the nginx thread and
  the plugin's runtime thread); **CPU/req** is that difference divided by the requests
  wrk completed. The worker's pid comes from the master's children (\`pgrep -P\`), and
  the script fails if it changes (a crashed worker).
- A **round** runs every variant once at every connection count; the variant order
  rotates from round to round. Reported values are medians over rounds; each **ratio**
  is the median over rounds of (variant / proxy_pass) within the same round and
  connection count, so that runs close in time are compared with each other.

## How to read it

These machines are shared and noisy: identical runs differ by up to ±20%, and the
gateway, the function and wrk share $(nproc) CPUs. Read the ratios rather than the
absolute numbers, and compare ratios across runs of the script rather than req/s. The
\`other load\` column of the raw data below shows how much else was running during each
run: where it is well above 0, treat that round with suspicion.

CPU/req is the cost the gateway pays per request and is the least sensitive to the
load generator; req/s and latency also depend on the function and wrk, which share the
same CPUs. DESIGN.md's expectation for the plugin at 32 connections (measured on a
prototype of this bridge): about 36 µs/req against proxy_pass's 27 µs, and about 0.8x
proxy_pass's throughput.

## Raw rounds

$raw
EOF
    if [ -n "$kept" ]; then
        printf '\n%s\n' "$kept" >>"$OUT"
    fi
    echo >&2
    echo "bench: report written to $OUT" >&2
fi
