# What goes on the wire besides signing: hop-by-hop headers stay on the client's
# connection, and pooled connections to the function survive the client's choices.
use t::TestAWSLambda 'no_plan';

run_tests();

__DATA__

=== TEST 1: hop-by-hop headers, those named in Connection, and Expect are not forwarded
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo" }
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("client").raw("GET /aws HTTP/1.1\r\n"
                .. "Host: localhost\r\n"
                .. "Connection: close, X-Hop\r\n"
                .. "X-Hop: only-for-this-hop\r\n"
                .. "Keep-Alive: timeout=5\r\n"
                .. "Proxy-Connection: keep-alive\r\n"
                .. "TE: trailers\r\n"
                .. "Trailer: X-Checksum\r\n"
                .. "Upgrade: websocket\r\n"
                .. "Expect: 100-continue\r\n"
                .. "X-End-To-End: kept\r\n\r\n"))
            ngx.print(res.body)
        }
    }
--- response_body_like chomp
\nheader: x-end-to-end: kept\n
--- response_body_unlike chomp
(?i)x-hop|keep-alive|proxy-connection|header: te:|trailer|upgrade|expect|header: connection



=== TEST 2: a client's Connection: close does not close the pooled connection to the function
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo" }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local conns = {}
            for i = 1, 4 do
                -- client.request always sends Connection: close
                local res = assert(client.request({ path = "/aws" }))
                conns[i] = res.status .. ":" .. res.body:match("\nconn: (%d+)")
            end
            ngx.say(conns[1] == conns[2] and conns[2] == conns[3] and conns[3] == conns[4]
                    and "one pooled connection" or table.concat(conns, " "))
        }
    }
--- response_body
one pooled connection



=== TEST 3: with keepalive off, every request gets a new connection
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo", keepalive = false }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local seen, n = {}, 0
            for _ = 1, 3 do
                local res = assert(client.request({ path = "/aws" }))
                local conn = res.body:match("\nconn: (%d+)")
                if not seen[conn] then
                    seen[conn] = true
                    n = n + 1
                end
            end
            ngx.say(n, " connections")
        }
    }
--- response_body
3 connections



=== TEST 4: a function that closes its connection after answering does not break the next request
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status" }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            for _, code in ipairs({ 200, 200, 503, 200 }) do
                local res = assert(client.request({ path = "/aws/" .. code }))
                ngx.say(res.status, " ", res.body:sub(1, -2))
            end
        }
    }
--- response_body
200 status 200
200 status 200
503 status 503
200 status 200



=== TEST 5: HTTP/1.0 clients are served
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("client").raw("GET /aws HTTP/1.0\r\n\r\n"))
            ngx.print(res.status, " ", res.body)
        }
    }
--- response_body
200 aws lambda invoked



=== TEST 6: very many headers and a long query string are all forwarded and signed
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- config
    location /t {
        content_by_lua_block {
            local headers = {}
            for i = 1, 150 do
                headers["X-Many-" .. i] = "value-" .. i
            end
            local args = {}
            for i = 1, 300 do
                args[i] = "k" .. i .. "=" .. string.rep("v", 10)
            end
            local res = assert(require("client").request({
                path = "/aws?" .. table.concat(args, "&"), headers = headers }))
            if res.status ~= 200 or not res.body:find("\nquery: ") then
                ngx.say(res.status, " ", res.body)
                return
            end
            local _, n = res.body:gsub("\nheader: x%-many%-%d+: value%-%d+", "")
            ngx.say(res.status, " ", n, " headers, query of ",
                    #res.body:match("\nquery: ([^\n]*)"), " bytes, signature ",
                    res.body:match("\nsignature: (%S+)"))
        }
    }
--- response_body
200 150 headers, query of 4691 bytes, signature ok



=== TEST 7: a client that goes away while its call is in flight leaves nothing waiting
--- http_config
    lua_check_client_abort on;
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/sleep" }
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", ngx.var.server_port))
            assert(sock:send("GET /aws/300 HTTP/1.1\r\nHost: localhost\r\n\r\n"))
            ngx.sleep(0.1)
            sock:close()
            local stats = require("apisix.plugins.aws-lambda.native").stats
            ngx.say("waiting while in flight: ", stats().waiting)
            ngx.sleep(0.6)
            ngx.say("waiting after the call ended: ", stats().waiting)
            ngx.say("untaken outcomes held until they expire: ", stats().tickets)
        }
    }
--- response_body
waiting while in flight: 1
waiting after the call ended: 0
untaken outcomes held until they expire: 1
--- no_error_log
[error]



=== TEST 8: the client's proxy credentials are neither forwarded nor signed
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws
--- more_headers
Proxy-Authorization: Basic cHJveHk6c2VjcmV0
Proxy-Authenticate: Basic realm="proxy"
X-End-To-End: kept
--- response_body_like chomp
\nsignature: ok\nsigned_headers: [^\n]*x-end-to-end[^\n]*\n(?s:.*)\nheader: x-end-to-end: kept\n
--- response_body_unlike chomp
(?i)proxy-auth|cHJveHk6c2VjcmV0
