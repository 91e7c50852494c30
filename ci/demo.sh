#!/usr/bin/env bash
# The main job, end to end, on this machine: build the plugin, start a local mock
# Lambda function (it verifies SigV4 signatures with botocore) and nginx with the
# plugin on its routes, send an apikey request, IAM-signed requests, a direct Invoke and
# a streamed answer, print what happened, and stop everything that was started.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
root=$(pwd)

GATEWAY_PORT=${GATEWAY_PORT:-19080}
MOCK_PORT=${MOCK_PORT:-19090}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
started=$(date +%s)

step "Installing what is missing (Debian packages, botocore; nothing for testing or fuzzing)"
ci/install-deps.sh

step "Building the native library"
ci/build.sh
echo "built $root/build/lib/aws_lambda_native.so"

for port in "$GATEWAY_PORT" "$MOCK_PORT"; do
    if port_in_use "$port"; then
        echo "port $port is in use: set GATEWAY_PORT / MOCK_PORT to free ports" >&2
        exit 1
    fi
done

work=$(mktemp -d /tmp/aws-lambda-demo.XXXXXX)
mkdir -p "$work/logs" "$work/conf"
mock_pid=""
cleanup() {
    if [ -f "$work/logs/nginx.pid" ]; then
        /usr/sbin/nginx -p "$work" -c conf/nginx.conf -s quit 2>/dev/null || true
    fi
    [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

python=python3
python3 -c "import botocore" 2>/dev/null || python=/usr/bin/python3

step "Starting the mock function on 127.0.0.1:$MOCK_PORT"
"$python" t/mock/function.py --host 127.0.0.1 --port "$MOCK_PORT" \
    >"$work/logs/mock.out" 2>"$work/logs/mock.log" &
mock_pid=$!
for _ in $(seq 50); do
    grep -q "listening" "$work/logs/mock.out" 2>/dev/null && break
    sleep 0.1
done
cat "$work/logs/mock.out"

cat >"$work/conf/nginx.conf" <<EOF
$NGINX_LOAD_MODULES
$NGINX_WORKER_USER
worker_processes 1;
error_log logs/error.log info;
pid logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log logs/access.log;
    lua_package_path "$root/lua/?.lua;;";
    lua_package_cpath "$root/build/lib/?.so;;";

    init_by_lua_block {
        -- the same configuration tables APISIX would hold for two routes
        APIKEY_ROUTE = {
            function_uri = "http://127.0.0.1:$MOCK_PORT/default/orders",
            authorization = { apikey = "demo-api-key" },
        }
        IAM_ROUTE = {
            function_uri = "http://127.0.0.1:$MOCK_PORT/default/orders",
            authorization = {
                iam = {
                    accesskey = "AKIDEXAMPLE",
                    secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                    aws_region = "us-east-1",
                },
            },
        }
        -- the mock's own paths: /stream/sse/3/500 asks for three server-sent events
        STREAM_ROUTE = { function_uri = "http://127.0.0.1:$MOCK_PORT" }
        -- direct invocation through the Lambda Invoke API (the mock's "echo" function)
        INVOKE_ROUTE = {
            function_name = "echo",
            invoke_endpoint = "http://127.0.0.1:$MOCK_PORT",
            authorization = {
                iam = {
                    accesskey = "AKIDEXAMPLE",
                    secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                },
            },
        }
    }

    server {
        listen 127.0.0.1:$GATEWAY_PORT;
        location ~ ^/apikey/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(APIKEY_ROUTE, ngx.var[1])
            }
        }
        location ~ ^/iam/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(IAM_ROUTE, ngx.var[1])
            }
        }
        location ~ ^/stream/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(STREAM_ROUTE, ngx.var[1])
            }
        }
        location ~ ^/invoke/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(INVOKE_ROUTE, ngx.var[1],
                                                                   "/invoke/*")
            }
        }
    }
}
EOF

step "Starting nginx with the plugin on 127.0.0.1:$GATEWAY_PORT (config: $work/conf/nginx.conf)"
/usr/sbin/nginx -p "$work" -c conf/nginx.conf
sleep 0.3
echo "routes: /apikey/* (API key)  /iam/* (AWS SigV4)  ->  http://127.0.0.1:$MOCK_PORT/default/orders"
echo "        /stream/* (no auth)  ->  http://127.0.0.1:$MOCK_PORT/*"
echo "        /invoke/* (Lambda Invoke API, function \"echo\")  ->  http://127.0.0.1:$MOCK_PORT/2015-03-31/functions/echo/invocations"

show() {
    echo
    echo "\$ curl $*"
    curl -sS -i "$@" | sed 's/^/  /'
}

step "1. An API-key request: the plugin adds x-api-key"
show "http://127.0.0.1:$GATEWAY_PORT/apikey/42?b=2&a=1"

step "2. An IAM request: the plugin signs with SigV4; the mock verifies it with botocore"
show -X POST -H 'Content-Type: application/json' -d '{"item":"book","qty":1}' \
    "http://127.0.0.1:$GATEWAY_PORT/iam/42/items?b=2&a=1"

step "3. A path with a space and UTF-8, signed (APISIX's own plugin fails this one)"
show "http://127.0.0.1:$GATEWAY_PORT/iam/caf%C3%A9%20menu"

step "4. Direct invocation: the request becomes an API Gateway 2.0 event; the function's proxy response comes back"
show -H 'Cookie: session=abc' "http://127.0.0.1:$GATEWAY_PORT/invoke/orders/42?expand=items"

step "5. A streamed answer: server-sent events pass as the function sends them, 500 ms apart"
echo
echo "\$ curl -N http://127.0.0.1:$GATEWAY_PORT/stream/sse/3/500   (each line with when it arrived)"
t0=$(date +%s%N)
curl -sS -N -i "http://127.0.0.1:$GATEWAY_PORT/stream/sse/3/500" | while IFS= read -r line; do
    printf '  %5d ms  %s\n' $((($(date +%s%N) - t0) / 1000000)) "${line%$'\r'}"
done

step "What happened"
signed=$(grep -c " ok conn=" "$work/logs/mock.log" || true)
echo "the mock function verified $signed SigV4 signature(s) as valid (its log: $work/logs/mock.log)"
echo "nginx logs: $work/logs/error.log, $work/logs/access.log"
echo "stopping nginx and the mock function"
echo "demo done in $(($(date +%s) - started)) s (installing and building included)"
