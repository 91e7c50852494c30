#!/usr/bin/env bash
# HTTP/2 clients (the compact Test::Nginx runner in t/runner speaks HTTP/1 only): curl
# with --http2-prior-knowledge against nginx's cleartext HTTP/2 listener, the plugin in
# front of the mock function, which checks every signature with botocore. Passes when
# a GET and a POST arrive signed with the client's path, query and body, repeated
# Set-Cookie headers come back, no connection-specific header reaches the HTTP/2
# client, a broken function gets 502 with one error-log line, and the next request
# succeeds.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
root=$(pwd)

GATEWAY_PORT=${HTTP2_GATEWAY_PORT:-21390}
MOCK_PORT=${HTTP2_MOCK_PORT:-21391}
NGINX=${TEST_NGINX_BINARY:-/usr/sbin/nginx}
work=$(mktemp -d /tmp/aws-lambda-http2.XXXXXX)
mkdir -p "$work/logs" "$work/conf"

fail() { echo "http2 test: FAIL: $*" >&2; exit 1; }
"$NGINX" -V 2>&1 | grep -q -- --with-http_v2_module || fail "$NGINX has no HTTP/2 module"
curl --version | grep -q HTTP2 || fail "curl has no HTTP/2 support"
for port in "$GATEWAY_PORT" "$MOCK_PORT"; do
    if port_in_use "$port"; then
        fail "port $port is in use (set HTTP2_GATEWAY_PORT / HTTP2_MOCK_PORT)"
    fi
done

mock_pid=""
cleanup() {
    "$NGINX" -p "$work" -c conf/nginx.conf -s stop 2>/dev/null || true
    [ -z "$mock_pid" ] || kill "$mock_pid" 2>/dev/null || true
    sleep 0.3
    rm -rf "$work"
}
trap cleanup EXIT

python3 t/mock/function.py --host 127.0.0.1 --port "$MOCK_PORT" >"$work/mock.out" \
    2>"$work/mock.log" &
mock_pid=$!
for _ in $(seq 50); do
    grep -q "^mock function listening on" "$work/mock.out" && break
    sleep 0.1
done
grep -q "^mock function listening on" "$work/mock.out" || fail "the mock did not start: $(cat "$work/mock.log")"

cat >"$work/conf/nginx.conf" <<EOF
$NGINX_LOAD_MODULES
$NGINX_WORKER_USER
worker_processes 1;
error_log logs/error.log info;
pid logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    lua_package_path "$root/lua/?.lua;;";
    lua_package_cpath "$root/build/lib/?.so;;";
    init_by_lua_block {
        CONF = {
            function_uri = "http://127.0.0.1:$MOCK_PORT",
            authorization = { iam = { accesskey = "AKIDEXAMPLE",
                                      secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" } },
        }
    }
    server {
        listen 127.0.0.1:$GATEWAY_PORT http2;
        location ~ ^/aws/(.*)\$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(CONF, ngx.var[1])
            }
        }
    }
}
EOF
"$NGINX" -p "$work" -c conf/nginx.conf

h2() {
    curl -sS --http2-prior-knowledge -D "$work/head" -o "$work/body" \
        -w '%{http_version} %{http_code}' "$@"
}
url="http://127.0.0.1:$GATEWAY_PORT/aws"

got=$(h2 "$url/echo/fn?b=2&a=1")
[ "$got" = "2 200" ] || fail "GET: $got"
grep -q "^target: /echo/fn?a=1&b=2$" "$work/body" || fail "GET target: $(cat "$work/body")"
grep -q "^signature: ok$" "$work/body" || fail "GET signature: $(cat "$work/body")"

got=$(h2 -X POST --data-binary "hello h2" "$url/echo/post")
[ "$got" = "2 200" ] || fail "POST: $got"
grep -q "^body: hello h2$" "$work/body" || fail "POST body: $(cat "$work/body")"
grep -q "^signature: ok$" "$work/body" || fail "POST signature: $(cat "$work/body")"

got=$(h2 "$url/status/201")
[ "$got" = "2 201" ] || fail "status: $got"
[ "$(grep -ci '^set-cookie:' "$work/head")" -eq 2 ] || fail "Set-Cookie: $(cat "$work/head")"
if grep -Ei '^(connection|keep-alive|transfer-encoding|upgrade):' "$work/head"; then
    fail "connection-specific headers sent to an HTTP/2 client (above)"
fi

got=$(h2 "$url/garbage")
[ "$got" = "2 502" ] || fail "broken function: $got"
got=$(h2 "$url/httptrigger")
[ "$got" = "2 200" ] || fail "the request after the failure: $got"

errors=$(grep -E "\[(error|alert|crit|emerg)\]" "$work/logs/error.log" || true)
[ "$(echo "$errors" | grep -c "failed to process aws-lambda, err: request to 127.0.0.1:$MOCK_PORT failed")" -eq 1 ] \
    && [ "$(echo "$errors" | wc -l)" -eq 1 ] || fail "error log: $errors"
if grep -q "wJalrXUtnFEMI" "$work/logs/error.log" "$work/head" "$work/body"; then
    fail "the secret key was logged or answered"
fi

echo "HTTP/2: GET, POST, Set-Cookie, 502 and the next request served over h2c; signatures ok"
